/**
 * The onnxruntime-web backend: a `Runtime` over the `ort` object a page (or any JS runtime)
 * imported itself — onnxruntime-web's `ort.wasm` or `ort.webgpu` build, or any module with the
 * same API. Nothing here imports onnxruntime-web: the caller picks the build and where its wasm
 * files are served from, and passes the module in.
 *
 * Execution providers: `wasm` (CPU; threads when the page is cross-origin isolated, set with
 * `ort.env.wasm.numThreads` before the first session) and `webgpu` (the GPU where the browser has
 * WebGPU, with wasm for the nodes WebGPU does not take).
 */
import { PeanutError } from '../errors.ts';
import { createRuntime, type OrtModule, type OrtSession, type Runtime, type RuntimeBackend, type SessionOptions, type TensorLike } from './session.ts';

export type WebEp = 'wasm' | 'webgpu';
export const WEB_EP_CHOICES: readonly WebEp[] = ['wasm', 'webgpu'];

/** How sessions are created from bytes (onnxruntime-web's `InferenceSession.create`). */
type CreateFromBytes = { create(model: Uint8Array, options?: Record<string, unknown>): Promise<unknown> };

function isOrtModule(ort: unknown): ort is OrtModule {
  const o = ort as Partial<OrtModule> | null;
  return !!o && typeof o.InferenceSession?.create === 'function' && typeof o.Tensor === 'function';
}

/**
 * A `Runtime` over an onnxruntime-web module.
 *
 * @throws PeanutError E_BAD_CONFIG when `ort` is not an onnxruntime module
 */
export function webRuntime(ort: unknown): Runtime {
  if (!isOrtModule(ort)) {
    throw new PeanutError('E_BAD_CONFIG', "options.ort is not an onnxruntime module; pass the module itself, e.g. `import * as ort from 'onnxruntime-web'`");
  }
  const versions = ort.env.versions ?? {};
  const backend: RuntimeBackend = {
    name: 'onnxruntime-web',
    version: versions.web ?? versions.common ?? 'unknown',
    epChoices: WEB_EP_CHOICES,
    cpuEp: 'wasm',
    async create(model: Uint8Array | string, base: Record<string, unknown>, opts: SessionOptions): Promise<{ session: OrtSession; ep: string }> {
      if (typeof model === 'string') throw new PeanutError('E_BAD_CONFIG', 'onnxruntime-web sessions are created from model bytes here, not from a path');
      if (opts.externalData?.some((f) => typeof f.data === 'string')) {
        throw new PeanutError('E_BAD_CONFIG', 'external data files on disk cannot be read in a browser; pass a model whose weights are inside the .onnx file');
      }
      const ep = (opts.ep ?? 'wasm') as WebEp;
      const externalData = opts.externalData?.map((f) => ({ path: f.path, data: f.data as Uint8Array }));
      const sessions = ort.InferenceSession as unknown as CreateFromBytes;
      const session = (await sessions.create(model, {
        ...base,
        executionProviders: ep === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'],
        ...(externalData?.length ? { externalData } : {}),
      })) as OrtSession;
      return { session, ep };
    },
    tensor: (t: TensorLike) => new ort.Tensor(t.type as never, t.data as never, t.dims),
  };
  return createRuntime(backend);
}
