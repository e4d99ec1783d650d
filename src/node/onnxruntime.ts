/**
 * The onnxruntime-node backend: the only module that imports onnxruntime-node. Execution
 * providers, chosen by `--ep auto|cpu|cuda`:
 *  - `cpu`: the CPU EP.
 *  - `cuda`: the CUDA EP, or a clear error saying how to install it when it cannot be created.
 *  - `auto`: CUDA when its provider library loads, else CPU; the choice is reported.
 */
import * as ort from 'onnxruntime-node';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { PeanutError } from '../errors.ts';
import { removeDeadTemps, tempPathFor } from './atomic.ts';
import { externalDataPath } from './files.ts';
import { createRuntime, firstLine, type OrtSession, type Runtime, type RuntimeBackend, type SessionOptions, type Session, type TensorLike } from '../runtime/session.ts';

/** The onnxruntime-node module itself, for tests and tools that drive it directly. */
export { ort };

export type EpChoice = 'auto' | 'cpu' | 'cuda';
export const EP_CHOICES: readonly EpChoice[] = ['auto', 'cpu', 'cuda'];

export const CUDA_INSTALL_HINT =
  'the CUDA execution provider is not installed: reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 ' +
  '(and `npm install-scripts approve onnxruntime-node` on npm 11) on a machine with CUDA 12 and cuDNN 9, or use --ep cpu';

type ExternalFile = { path: string; data: Uint8Array | string };
type Create = (model: Uint8Array | string, external?: Array<{ path: string; data: Uint8Array }>) => Promise<OrtSession>;

/**
 * The folder the on-disk external data files' locations are relative to (each `data` is
 * `<folder>/<path>`), every file checked to be one a model in that folder may name
 * (`externalDataPath`: inside it, a regular file).
 *
 * @throws PeanutError E_NOT_ONNX for a location that leads out of it, or files that disagree on it
 */
function modelFolder(files: ReadonlyArray<{ path: string; data: string }>): string {
  let folder: string | undefined;
  for (const f of files) {
    const abs = resolve(f.data);
    const rel = normalize(f.path.split('/').join(sep));
    const dir = abs.endsWith(`${sep}${rel}`) ? abs.slice(0, abs.length - rel.length - 1) || sep : undefined;
    if (dir === undefined || (folder !== undefined && dir !== folder) || resolve(externalDataPath(dir, f.path)) !== abs) {
      throw new PeanutError('E_NOT_ONNX', `external data location '${f.path}' does not name ${f.data} inside the model's folder; an ONNX model may only name data files inside its own folder, so it is refused`);
    }
    folder = dir;
  }
  return folder!;
}

/** Session model files written by `withExternalFiles` (temp-file names, so dead runs' ones are swept). */
const SESSION_FILE = 'peanut-onnx-session.onnx';

/**
 * Runs `create` on a model given as bytes whose external data are files on disk. ONNX Runtime's
 * Node binding takes external data only as bytes, and it resolves file locations only relative
 * to a model *file*, refusing absolute locations and paths that leave the model's directory. So
 * the model bytes go to a short-lived file in the model's own folder, the one every location is
 * relative to and checked to stay inside (removed once the session exists; one a killed run left
 * there is removed by the next), and ONNX Runtime reads the tensors itself, without the weights
 * passing through JS memory. Where that folder is not writable: a temp directory with hard links
 * to the data; where those fail (another filesystem): the files are read into memory and passed
 * as bytes.
 */
async function withExternalFiles(model: Uint8Array, files: readonly ExternalFile[], create: Create): Promise<OrtSession> {
  const onDisk = files.filter((f): f is { path: string; data: string } => typeof f.data === 'string');
  const inMemory = files.filter((f): f is { path: string; data: Uint8Array } => typeof f.data !== 'string');
  if (onDisk.length === 0) return create(model, inMemory.length ? inMemory : undefined);
  const dir = modelFolder(onDisk);
  const attempt = async (folder: string): Promise<OrtSession> => {
    const file = tempPathFor(join(folder, SESSION_FILE));
    writeFileSync(file, model);
    try {
      return await create(file, inMemory.length ? inMemory : undefined);
    } finally {
      rmSync(file, { force: true });
    }
  };
  removeDeadTemps(dir, SESSION_FILE);
  try {
    const probe = tempPathFor(join(dir, SESSION_FILE));
    writeFileSync(probe, new Uint8Array(0));
    rmSync(probe, { force: true });
  } catch {
    const tmp = mkdtempSync(join(tmpdir(), 'peanut-onnx-session-'));
    try {
      for (const f of onDisk) {
        mkdirSync(dirname(join(tmp, f.path)), { recursive: true });
        linkSync(f.data, join(tmp, f.path));
      }
      return await attempt(tmp);
    } catch {
      return create(model, [...inMemory, ...onDisk.map((f) => ({ path: f.path, data: readFileSync(f.data) }))]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return attempt(dir);
}

async function createWithData(model: Uint8Array | string, options: Record<string, unknown>, externalData?: readonly ExternalFile[]): Promise<OrtSession> {
  const make: Create = async (m, external) => {
    const o = (external ? { ...options, externalData: external } : options) as ort.InferenceSession.SessionOptions;
    return (typeof m === 'string' ? await ort.InferenceSession.create(m, o) : await ort.InferenceSession.create(m, o)) as unknown as OrtSession;
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

async function createOnNode(model: Uint8Array | string, base: Record<string, unknown>, opts: SessionOptions): Promise<{ session: OrtSession; ep: string }> {
  const ep = (opts.ep ?? 'cpu') as EpChoice;
  const createWith = (o: Record<string, unknown>) => createWithData(model, o, opts.externalData);
  if (ep === 'cpu' || (ep === 'auto' && !cudaProviderInstalled())) return { session: await createWith({ ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
  if (ep === 'cuda' && !cudaProviderInstalled()) {
    throw new PeanutError('E_EP_UNAVAILABLE', `${CUDA_INSTALL_HINT} (libonnxruntime_providers_cuda is not in onnxruntime-node's bin folder)`);
  }
  try {
    return { session: await createWith({ ...base, executionProviders: [{ name: 'cuda' }, 'cpu'] }), ep: 'cuda' };
  } catch (err) {
    const msg = (err as Error).message ?? String(err);
    const cudaMissing = /cuda|providers_shared|unsupported/i.test(msg);
    if (ep === 'cuda' || !cudaMissing) {
      if (cudaMissing) throw new PeanutError('E_EP_UNAVAILABLE', `${CUDA_INSTALL_HINT} (${firstLine(msg)})`);
      throw err;
    }
    return { session: await createWith({ ...base, executionProviders: ['cpu'] }), ep: 'cpu' };
  }
}

export const nodeBackend: RuntimeBackend = {
  name: 'onnxruntime-node',
  version: ort.env.versions?.node ?? 'unknown',
  epChoices: EP_CHOICES,
  cpuEp: 'cpu',
  create: createOnNode,
  tensor: (t: TensorLike) => new ort.Tensor(t.type as ort.Tensor.Type, t.data as never, t.dims),
};

// Quiet by default: ONNX Runtime's own log lines carry terminal colour codes, and every failure
// reaches the caller as an exception anyway.
ort.env.logLevel = 'fatal';

/** ONNX Runtime on Node (onnxruntime-node): CPU, and CUDA where its provider is installed. */
export const nodeRuntime: Runtime = createRuntime(nodeBackend);

/** A session on Node's runtime, and the execution provider it runs on. */
export async function createSession(model: Uint8Array | string, opts: SessionOptions & { ep?: EpChoice } = {}): Promise<{ session: Session; ep: EpChoice }> {
  const session = await nodeRuntime.createSession(model, opts);
  return { session, ep: session.ep as EpChoice };
}
