#!/usr/bin/env python3
"""Render test PNGs for the digits-image demo from scikit-learn's 8x8 digits.

Run from the repository root, inside a virtualenv made from
``models/export/requirements.txt``::

    python models/export/render_digit_pngs.py               # writes models/digits-image/samples/
    python models/export/render_digit_pngs.py --out /tmp/s  # or elsewhere
    python models/export/render_digit_pngs.py --all --out /tmp/all  # all 450 test rows

Nothing is downloaded: the digits ship inside scikit-learn.

Which digits
------------
Only rows of the *test* split of ``export.py`` (stratified 75/25,
``random_state=42``, the same call), so the ``digits`` model never saw them:
the first two of each class in test-set order, taken whether or not the model
gets them right, so the accuracy measured on them is not flattered.

``--all`` renders every row of the test split instead (450 PNGs, row ``r`` in
style ``r mod 10``), to measure the demo on more than the committed twenty; it
is not committed (about 1 MB).

Styles
------
Each of the ten styles below is used twice, and the two rows of a class get two
different styles.  ``exact`` styles are lossless (no resampling, or an integer
nearest-neighbour upscale of light-on-dark grey), so preprocessing them should
give back the original 64 values; the others resample, recolour, add alpha or
place the digit off-centre in a larger, non-square canvas.

``samples.json`` lists every file with its true label, its style, and the 64
original pixel values (0..16, row by row) it was rendered from.

PNGs are written with Pillow (``optimize=True``); with the pinned versions the
bytes are the same from run to run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# The split of export.py's digits model: keep these in step with its Spec.
RANDOM_STATE = 42
TEST_SIZE = 0.25
PER_CLASS = 2

PAPER = (246, 241, 226)  # cream
NAVY = (22, 32, 92)


@dataclass(frozen=True)
class Style:
    name: str
    canvas: tuple[int, int]  # width, height of the PNG
    digit: int  # side of the square the 8x8 digit is scaled to
    offset: tuple[int, int]  # where that square sits in the canvas
    mode: str  # Pillow mode of the file: L, RGB, RGBA
    resample: Image.Resampling
    dark_on_light: bool
    exact: bool = False


STYLES = [
    Style("grey-8-exact", (8, 8), 8, (0, 0), "L", Image.Resampling.NEAREST, False, exact=True),
    Style("grey-64-nearest-exact", (64, 64), 64, (0, 0), "L", Image.Resampling.NEAREST, False, exact=True),
    Style("grey-28-dark-on-light", (28, 28), 20, (4, 4), "L", Image.Resampling.BILINEAR, True),
    Style("grey-64-bicubic", (64, 64), 56, (4, 4), "L", Image.Resampling.BICUBIC, False),
    Style("rgb-64-navy-on-cream", (64, 64), 48, (8, 8), "RGB", Image.Resampling.BILINEAR, True),
    Style("rgb-200x150-black-on-white", (200, 150), 120, (30, 15), "RGB", Image.Resampling.BICUBIC, True),
    Style("rgba-64-black-on-transparent", (64, 64), 56, (4, 4), "RGBA", Image.Resampling.BILINEAR, True),
    Style("rgba-28-white-on-transparent", (28, 28), 20, (4, 4), "RGBA", Image.Resampling.BILINEAR, False),
    Style("rgb-200x150-light-on-dark", (200, 150), 96, (80, 40), "RGB", Image.Resampling.BILINEAR, False),
    Style("rgba-150x200-opaque-dark-on-light", (150, 200), 110, (10, 60), "RGBA", Image.Resampling.BICUBIC, True),
]


def pick(X: np.ndarray, y: np.ndarray, every: bool) -> tuple[list[tuple[int, int, Style]], np.ndarray]:
    """(test row, class, style) of the rows to render, and the test rows themselves."""
    _, X_test, _, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, stratify=y, random_state=RANDOM_STATE)
    assert len(y_test) == 450, "the split no longer matches export.py's (450 test rows)"
    if every:
        return [(r, int(y_test[r]), STYLES[r % len(STYLES)]) for r in range(len(y_test))], X_test
    rows = []
    for cls in range(10):
        for k, i in enumerate(np.flatnonzero(y_test == cls)[:PER_CLASS]):
            # Row k of class c takes style (c + 5k) mod 10: ten styles, each twice, two per class.
            rows.append((int(i), cls, STYLES[(cls + 5 * k) % len(STYLES)]))
    return rows, X_test


def render(pixels: np.ndarray, style: Style) -> Image.Image:
    """The 8x8 digit (0..16) as a PNG-ready image in the given style."""
    ink = Image.fromarray((pixels.reshape(8, 8) * 255 / 16).round().astype(np.uint8), "L")
    ink = ink.resize((style.digit, style.digit), style.resample)
    mask = Image.new("L", style.canvas, 0)
    mask.paste(ink, style.offset)  # ink level 0..255 over the whole canvas
    if style.mode == "L":
        return Image.eval(mask, lambda v: 255 - v) if style.dark_on_light else mask
    if style.name.startswith("rgba") and "transparent" in style.name:
        colour = (0, 0, 0) if style.dark_on_light else (255, 255, 255)
        out = Image.new("RGBA", style.canvas, colour + (0,))
        out.putalpha(mask)
        return out
    if style.dark_on_light:
        paper, pen = (PAPER, NAVY) if "navy" in style.name else ((255, 255, 255), (0, 0, 0))
    else:
        paper, pen = (28, 28, 34), (235, 235, 225)
    out = Image.composite(Image.new("RGB", style.canvas, pen), Image.new("RGB", style.canvas, paper), mask)
    return out.convert(style.mode)


def main(argv: list[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parent.parent / "digits-image" / "samples"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out,
                        help=f"output folder (default: {default_out})")
    parser.add_argument("--all", action="store_true",
                        help="render every test row, not two per class (use with --out)")
    args = parser.parse_args(argv)
    out: Path = args.out
    if args.all and out.resolve() == default_out:
        parser.error("--all writes 450 PNGs: give it an --out outside the repository")
    out.mkdir(parents=True, exist_ok=True)

    ds = load_digits()
    rows, X_test = pick(ds.data, ds.target, args.all)
    listing = []
    for n, (row, cls, style) in enumerate(rows):
        pixels = X_test[row]
        tag = f"r{row:03d}" if args.all else "ab"[n % PER_CLASS]
        name = f"{cls}-{tag}-{style.name}.png"
        render(pixels, style).save(out / name, optimize=True)
        listing.append({"file": name, "label": cls, "style": style.name, "exact": style.exact,
                        "test_row": row, "pixels": [int(v) for v in pixels]})
    (out / "samples.json").write_text(
        "[\n" + ",\n".join("  " + json.dumps(s) for s in listing) + "\n]\n")
    total = sum((out / s["file"]).stat().st_size for s in listing)
    print(f"wrote {len(listing)} PNGs ({total} bytes) and samples.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
