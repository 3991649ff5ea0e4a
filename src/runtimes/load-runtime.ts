import type { ModelSpec } from '../models/model-config.js';
import type { ModelRuntime } from './runtime.js';

/** Runtimes load on demand, so a deployment of handler models never loads onnxruntime. */
export async function loadRuntime(spec: ModelSpec): Promise<ModelRuntime> {
  switch (spec.config.runtime) {
    case 'onnx': {
      const { OnnxRuntime } = await import('./onnx/onnx-runtime.js');
      return OnnxRuntime.load(spec);
    }
    case 'handler': {
      const { HandlerRuntime } = await import('./handler/handler-runtime.js');
      return HandlerRuntime.load(spec);
    }
  }
}
