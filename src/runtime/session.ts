/**
 * The only module that talks to onnxruntime-node. Sessions are created here with an execution
 * provider chosen by `--ep auto|cpu|cuda`:
 *  - `cpu`: the CPU EP.
 *  - `cuda`: the CUDA EP, or a clear error saying how to install it when it cannot be created.
 *  - `auto`: CUDA when its provider library loads, else CPU; the choice is reported.
 */
import * as ort from 'onnxruntime-node';
import { existsSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { PeanutError } from '../errors.ts';

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
  /**
   * Files referenced as external data, when the model is passed as bytes: `path` is the location
   * the model names, `data` the bytes or the file's path on disk (read by ONNX Runtime itself, never
   * loaded into JS memory; see `withExternalFiles`).
   */
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
  };
}

let sessionFileCounter = 0;

/**
 * Runs `create` on a model given as bytes whose external data are files on disk. ONNX Runtime's
 * Node binding takes external data only as bytes, and it resolves file locations only relative
 * to a model *file*, refusing absolute locations and paths that leave the model's directory. So
 * the model bytes go to a short-lived file beside the data (removed once the session exists),
 * and ONNX Runtime reads the tensors itself, without the weights passing through JS memory.
 * Where that directory is not writable: hard links to the data in a temp directory; where those
 * fail (another filesystem): the files are read into memory and passed as bytes.
 */
async function withExternalFiles(
  model: Uint8Array,
  files: ReadonlyArray<{ path: string; data: Uint8Array | string }>,
  create: (model: Uint8Array | string, external?: Array<{ path: string; data: Uint8Array }>) => Promise<ort.InferenceSession>,
): Promise<ort.InferenceSession> {
  const onDisk = files.filter((f): f is { path: string; data: string } => typeof f.data === 'string');
  const inMemory = files.filter((f): f is { path: string; data: Uint8Array } => typeof f.data !== 'string');
  if (onDisk.length === 0) return create(model, inMemory.length ? inMemory : undefined);
  // The directory the locations are relative to: `data` is `<dir>/<path>`.
  const first = onDisk[0]!;
  const norm = first.path.split('/').join(sep);
  const dir = first.data.endsWith(norm) ? first.data.slice(0, first.data.length - norm.length) || '.' : dirname(first.data);
  const name = `.peanut-onnx-session.${process.pid}.${++sessionFileCounter}.onnx`;
  const attempt = async (folder: string): Promise<ort.InferenceSession> => {
    const file = join(folder, name);
    writeFileSync(file, model);
    try {
      return await create(file, inMemory.length ? inMemory : undefined);
    } finally {
      rmSync(file, { force: true });
    }
  };
  try {
    writeFileSync(join(dir, name), new Uint8Array(0));
    rmSync(join(dir, name), { force: true });
  } catch {
    const tmp = mkdtempSync(join(tmpdir(), 'peanut-onnx-session-'));
    try {
      for (const f of onDisk) linkSync(f.data, join(tmp, f.path));
      return await attempt(tmp);
    } catch {
      return create(model, [...inMemory, ...onDisk.map((f) => ({ path: f.path, data: readFileSync(f.data) }))]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return attempt(dir);
}

async function createWithData(model: Uint8Array | string, options: ort.InferenceSession.SessionOptions, externalData?: SessionOptions['externalData']): Promise<ort.InferenceSession> {
  const make = (m: Uint8Array | string, external?: Array<{ path: string; data: Uint8Array }>) => {
    const o = external ? { ...options, externalData: external } : options;
    return typeof m === 'string' ? ort.InferenceSession.create(m, o) : ort.InferenceSession.create(m, o);
  };
  // A model file resolves its external data itself.
  if (typeof model === 'string' || !externalData?.length) return make(model);
  return withExternalFiles(model, externalData, make);
}

/**
 * Whether onnxruntime-node's CUDA provider library sits beside its native binding (it is an
 * optional download on Linux x64 and Windows). When it is absent, `auto` goes straight to the CPU
 * and `cuda` fails with the install hint, instead of an attempt that makes ONNX Runtime print its
 * own library-load error. If the layout cannot be read, the attempt decides.
 */
export function cudaProviderInstalled(): boolean {
  if (process.platform !== 'linux' && process.platform !== 'win32') return false;
  try {
    const bin = join(dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node'))), 'bin');
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    return readdirSync(bin).some((napi) => existsSync(join(bin, napi, process.platform, process.arch, lib)));
  } catch {
    return true;
  }
}

/** Creates a session on the requested execution provider. */
export async function createSession(model: Uint8Array | string, opts: SessionOptions = {}): Promise<CreatedSession> {
  const ep = opts.ep ?? 'cpu';
  const base = baseOptions(opts);
  const createWith = (m: Uint8Array | string, o: ort.InferenceSession.SessionOptions) => createWithData(m, o, opts.externalData);
  if (ep === 'cpu' || (ep === 'auto' && !cudaProviderInstalled())) return { session: await createWith(model, { ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
  if (ep === 'cuda' && !cudaProviderInstalled()) {
    throw new PeanutError('E_EP_UNAVAILABLE', `${CUDA_INSTALL_HINT} (libonnxruntime_providers_cuda is not in onnxruntime-node's bin folder)`);
  }
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
