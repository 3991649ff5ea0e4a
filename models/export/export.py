#!/usr/bin/env python3
"""Build Spillway's three demo ONNX models from scikit-learn's bundled datasets.

Run from the repository root, inside a virtualenv made from
``models/export/requirements.txt``::

    python models/export/export.py             # writes into models/
    python models/export/export.py --out /tmp/m  # writes into /tmp/m/

Nothing is downloaded: both datasets ship inside scikit-learn.

Models
------
``iris``
    ``load_iris()`` (150 x 4 float features, 3 classes).  Stratified 70/30
    split, ``Pipeline(StandardScaler, LogisticRegression(max_iter=1000))``.

``digits``
    ``load_digits()`` (1797 x 64 integer pixels in 0..16, 10 classes).
    Stratified 75/25 split, ``Pipeline(StandardScaler,
    MLPClassifier(hidden_layer_sizes=(64,)))``.  The scaler is part of the
    pipeline, so the ONNX model takes raw pixel values.

``digits-wide``
    The same data and split as ``digits``, with a wider and deeper network,
    ``MLPClassifier(hidden_layer_sizes=(1024, 512))`` (~0.6M weights, ~2.4 MB):
    the model for measuring micro-batching.  One row at a time its matrix
    products are matrix-vector products that read every weight once per row;
    a batch reads them once for all its rows, so a row in a batch of 64 costs
    a fraction of a row alone.

ONNX interface (every model)
----------------------------
input   ``float_input``    float32  [N, F]   (F = 4 for iris, 64 for digits)
output  ``label``          int64    [N]      predicted class index
output  ``probabilities``  float32  [N, C]   class probabilities (C = 3 / 10)
(digits-wide as digits)

ZipMap is disabled, so probabilities are a plain tensor, not a sequence of
maps.  Opsets are capped (default domain 17, ai.onnx.ml 3) so the files load
in onnxruntime-node 1.30.  The class names, in class-index order, are also
stored in the model's metadata as ``class_names`` (a JSON array).

Outputs written under ``--out`` (default: the ``models/`` folder beside this
script's folder)::

    iris/model.onnx          iris/samples.json
    digits/model.onnx        digits/samples.json
    digits-wide/model.onnx   digits-wide/samples.json
    export/metrics.json

Each exported file is re-loaded with onnxruntime and checked against
scikit-learn on the test set; the script exits non-zero if ONNX and
scikit-learn disagree on any test prediction.

``samples.json`` holds test-set rows (plus, for iris, the classic first
training row) that the model classifies correctly with a clear margin, each as
``{"input": [...], "label": <true class index>, "label_name": "..."}``, so
tests can assert the exact class.

Given the pinned versions the export is byte-deterministic: fixed random
states, a fixed graph name, sorted opset imports and no timestamps in the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

RANDOM_STATE = 42
INPUT_NAME = "float_input"
LABEL_NAME = "label"
PROBA_NAME = "probabilities"
# onnxruntime-node 1.30 handles far newer opsets; these caps keep the files
# loadable by older runtimes as well.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# A sample goes into samples.json only if the model is at least this sure of
# the (correct) class, so float32 rounding in another runtime cannot flip it.
SAMPLE_MIN_PROBA = 0.9


@dataclass
class Spec:
    name: str
    dataset: str
    load: Callable[[], Any]
    test_size: float
    make_pipeline: Callable[[], Pipeline]
    class_names: Callable[[Any], list[str]]
    samples_per_class: int
    integer_inputs: bool


def iris_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )


def mlp_pipeline(hidden_layer_sizes: tuple[int, ...], max_iter: int) -> Pipeline:
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "clf",
                MLPClassifier(
                    hidden_layer_sizes=hidden_layer_sizes,
                    max_iter=max_iter,
                    random_state=RANDOM_STATE,
                ),
            ),
        ]
    )


SPECS = [
    Spec(
        name="iris",
        dataset="iris",
        load=load_iris,
        test_size=0.3,
        make_pipeline=iris_pipeline,
        class_names=lambda ds: [str(n) for n in ds.target_names],
        samples_per_class=2,  # 6 test samples + the classic training row
        integer_inputs=False,
    ),
    Spec(
        name="digits",
        dataset="digits",
        load=load_digits,
        test_size=0.25,
        make_pipeline=lambda: mlp_pipeline((64,), 500),
        class_names=lambda ds: [str(int(n)) for n in ds.target_names],
        samples_per_class=1,  # one sample of every digit 0..9
        integer_inputs=True,
    ),
    Spec(
        name="digits-wide",
        dataset="digits",
        load=load_digits,
        test_size=0.25,
        make_pipeline=lambda: mlp_pipeline((1024, 512), 300),
        class_names=lambda ds: [str(int(n)) for n in ds.target_names],
        samples_per_class=1,
        integer_inputs=True,
    ),
]


def to_onnx_model(pipe: Pipeline, n_features: int, n_classes: int, name: str,
                  class_names: list[str]) -> onnx.ModelProto:
    """Convert a fitted classifier pipeline with the fixed Spillway interface."""
    onx = convert_sklearn(
        pipe,
        name=f"spillway_{name.replace('-', '_')}",  # fixed graph name (default would vary)
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        # Renames skl2onnx's output_label / output_probability.
        final_types=[
            (LABEL_NAME, Int64TensorType([None])),
            (PROBA_NAME, FloatTensorType([None, n_classes])),
        ],
        options={id(pipe.steps[-1][1]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    # skl2onnx collects the opset domains in a set, so their order in the file
    # follows Python's per-process string hashing; sort them for stable bytes.
    opsets = sorted(((d.domain, d.version) for d in onx.opset_import))
    del onx.opset_import[:]
    for domain, version in opsets:
        onx.opset_import.add(domain=domain, version=version)
    onx.doc_string = f"Spillway demo model '{name}' (scikit-learn pipeline)"
    meta = onx.metadata_props.add()
    meta.key = "class_names"
    meta.value = json.dumps(class_names)
    onnx.checker.check_model(onx, full_check=True)
    return onx


def describe_io(sess: ort.InferenceSession) -> dict[str, list[dict[str, Any]]]:
    def one(arg: Any) -> dict[str, Any]:
        return {"name": arg.name, "type": arg.type,
                "shape": [d if isinstance(d, int) else None for d in arg.shape]}

    return {"inputs": [one(a) for a in sess.get_inputs()],
            "outputs": [one(a) for a in sess.get_outputs()]}


def pick_samples(spec: Spec, X: np.ndarray, y: np.ndarray, onnx_label: np.ndarray,
                 onnx_proba: np.ndarray, sk_label: np.ndarray,
                 class_names: list[str]) -> list[dict[str, Any]]:
    """First confidently-and-correctly classified test rows of every class."""
    picked: list[dict[str, Any]] = []
    for cls in range(len(class_names)):
        taken = 0
        for i in range(len(y)):
            if taken == spec.samples_per_class:
                break
            ok = (y[i] == cls and onnx_label[i] == cls and sk_label[i] == cls
                  and onnx_proba[i, cls] >= SAMPLE_MIN_PROBA)
            if not ok:
                continue
            row = [int(v) for v in X[i]] if spec.integer_inputs else \
                [float(v) for v in X[i]]
            picked.append({"input": row, "label": int(cls),
                           "label_name": class_names[cls]})
            taken += 1
        if taken < spec.samples_per_class:
            raise RuntimeError(f"{spec.name}: not enough good samples of class {cls}")
    return picked


def build(spec: Spec, out: Path) -> dict[str, Any]:
    ds = spec.load()
    X, y = ds.data, ds.target
    class_names = spec.class_names(ds)
    n_features, n_classes = X.shape[1], len(class_names)

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=spec.test_size, stratify=y, random_state=RANDOM_STATE)

    pipe = spec.make_pipeline().fit(X_train, y_train)
    sk_label = pipe.predict(X_test)
    sk_proba = pipe.predict_proba(X_test)
    sk_acc = float(np.mean(sk_label == y_test))
    print(f"[{spec.name}] sklearn test accuracy: {sk_acc:.4f} "
          f"({int(np.sum(sk_label == y_test))}/{len(y_test)})")

    onx = to_onnx_model(pipe, n_features, n_classes, spec.name, class_names)
    model_dir = out / spec.name
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / "model.onnx"
    data = onx.SerializeToString(deterministic=True)
    model_path.write_bytes(data)

    # Verify the file as written, with onnxruntime.
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    io = describe_io(sess)
    onnx_label, onnx_proba = sess.run(
        [LABEL_NAME, PROBA_NAME], {INPUT_NAME: X_test.astype(np.float32)})
    assert onnx_label.dtype == np.int64 and onnx_label.shape == (len(y_test),)
    assert onnx_proba.dtype == np.float32 and onnx_proba.shape == (len(y_test), n_classes)
    agreement = float(np.mean(onnx_label == sk_label))
    onnx_acc = float(np.mean(onnx_label == y_test))
    max_proba_diff = float(np.max(np.abs(onnx_proba.astype(np.float64) - sk_proba)))
    print(f"[{spec.name}] onnx test accuracy:    {onnx_acc:.4f}; "
          f"sklearn/onnx label agreement {agreement:.4f}; "
          f"max |proba diff| {max_proba_diff:.2e}")
    print(f"[{spec.name}] wrote {model_path} ({len(data)} bytes)")

    samples = pick_samples(spec, X_test, y_test, onnx_label, onnx_proba,
                           sk_label, class_names)
    if spec.name == "iris":
        classic = [5.1, 3.5, 1.4, 0.2]
        assert np.allclose(X[0], classic) and y[0] == 0
        lab, prob = sess.run([LABEL_NAME, PROBA_NAME],
                             {INPUT_NAME: np.array([classic], dtype=np.float32)})
        assert lab[0] == 0 and prob[0, 0] >= SAMPLE_MIN_PROBA, (lab, prob)
        samples.insert(0, {"input": classic, "label": 0,
                           "label_name": class_names[0], "note": "training sample"})
    # Every sample must round-trip through the ONNX file as claimed.
    lab = sess.run([LABEL_NAME], {INPUT_NAME: np.array(
        [s["input"] for s in samples], dtype=np.float32)})[0]
    assert [int(v) for v in lab] == [s["label"] for s in samples]
    # One sample per line keeps the file readable (digits rows are 64 long).
    (model_dir / "samples.json").write_text(
        "[\n" + ",\n".join("  " + json.dumps(s) for s in samples) + "\n]\n")

    if agreement != 1.0:
        raise SystemExit(f"[{spec.name}] ONNX and sklearn disagree on "
                         f"{int(np.sum(onnx_label != sk_label))} test rows")

    return {
        "dataset": f"sklearn.datasets.load_{spec.dataset}",
        "pipeline": [type(step).__name__ for _, step in pipe.steps],
        "class_names": class_names,
        "n_features": n_features,
        "train_size": int(len(y_train)),
        "test_size": int(len(y_test)),
        "test_fraction": spec.test_size,
        "random_state": RANDOM_STATE,
        "sklearn_test_accuracy": round(sk_acc, 6),
        "onnx_test_accuracy": round(onnx_acc, 6),
        "sklearn_onnx_label_agreement": round(agreement, 6),
        "max_abs_probability_diff": float(f"{max_proba_diff:.3g}"),
        "onnx_io": io,
        "opset": {d.domain or "ai.onnx": d.version for d in onx.opset_import},
        "ir_version": onx.ir_version,
        "model_bytes": len(data),
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "samples": len(samples),
    }


def main(argv: list[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out,
                        help=f"output folder (default: {default_out})")
    args = parser.parse_args(argv)
    out: Path = args.out

    metrics = {
        "models": {spec.name: build(spec, out) for spec in SPECS},
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
        },
    }
    (out / "export").mkdir(parents=True, exist_ok=True)
    (out / "export" / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'export' / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
