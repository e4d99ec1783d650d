/**
 * The only module that talks to onnxruntime-node. Sessions are created here with an execution
 * provider chosen by `--ep auto|cpu|cuda`:
 *  - `cpu`: the CPU EP.
 *  - `cuda`: the CUDA EP, or a clear error saying how to install it when it cannot be created.
 *  - `auto`: CUDA when its provider library loads, else CPU; the choice is reported.
 */
import * as ort from 'onnxruntime-node';
import { PeanutError } from './errors.ts';

export { ort };
export type EpChoice = 'auto' | 'cpu' | 'cuda';
export const EP_CHOICES: readonly EpChoice[] = ['auto', 'cpu', 'cuda'];

export interface SessionOptions {
  ep?: EpChoice;
  /** Intra-op threads (default: ORT's choice, one per core). */
  threads?: number;
  /**
   * Memory-pattern planning pre-allocates for one input shape; with dynamic padding the shapes
   * change every batch, so training and probing sessions turn it off.
   */
  memPattern?: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Files referenced as external data, when the model is passed as bytes. */
  externalData?: Array<{ path: string; data: Uint8Array | string }>;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The execution provider actually used. */
  ep: 'cpu' | 'cuda';
}

export const CUDA_INSTALL_HINT =
  'the CUDA execution provider is not installed: reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 ' +
  '(and `npm install-scripts approve onnxruntime-node` on npm 11) on a machine with CUDA 12 and cuDNN 9, or use --ep cpu';

function baseOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    enableMemPattern: opts.memPattern ?? true,
    enableCpuMemArena: true,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    ...(opts.externalData ? { externalData: opts.externalData } : {}),
  };
}

async function createWith(model: Uint8Array | string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

/** Creates a session on the requested execution provider. */
export async function createSession(model: Uint8Array | string, opts: SessionOptions = {}): Promise<CreatedSession> {
  const ep = opts.ep ?? 'cpu';
  const base = baseOptions(opts);
  if (ep === 'cpu') return { session: await createWith(model, { ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
  try {
    const session = await createWith(model, { ...base, executionProviders: [{ name: 'cuda' }, 'cpu'] });
    return { session, ep: 'cuda' };
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    const cudaMissing = /cuda|providers_shared|unsupported/i.test(msg);
    if (ep === 'cuda' || !cudaMissing) {
      if (cudaMissing) throw new PeanutError('E_EP_UNAVAILABLE', `${CUDA_INSTALL_HINT} (${firstLine(msg)})`);
      throw err;
    }
    return { session: await createWith(model, { ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 300);
}

/** A float32 tensor. */
export function f32Tensor(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

/** An int64 tensor from numbers or bigints. */
export function i64Tensor(data: BigInt64Array | readonly number[], dims: readonly number[]): ort.Tensor {
  const arr = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v));
  return new ort.Tensor('int64', arr, dims);
}
