/**
 * The runtime boundary: the only code that talks to an ONNX Runtime. The `ort` module itself
 * (onnxruntime-node, onnxruntime-web) is passed in by whoever picks the platform, wrapped with a
 * `RuntimeBackend` that knows that platform's execution providers; everything else in the library
 * sees a `Runtime`, its `Session`s, and plain `HostTensor`s (type, data, dims), never an `ort`
 * object.
 */
import { PeanutError } from '../errors.ts';
import type { Feeds, HostTensor, TensorLike } from './tensors.ts';

export type { Feeds, HostTensor, TensorLike };

/** The members of an onnxruntime module this library uses (onnxruntime-node and -web both have them). */
export interface OrtModule {
  readonly InferenceSession: { create(model: never, options?: never): Promise<unknown> };
  readonly Tensor: new (type: never, data: never, dims?: readonly number[]) => unknown;
  readonly env: { readonly versions?: Readonly<Record<string, string | undefined>> };
}

/** What the library needs of an onnxruntime session. */
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, unknown>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** What the library needs of an onnxruntime tensor. */
export interface OrtTensor {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose?(): void;
}

export interface SessionOptions {
  /** Execution provider choice, in the backend's terms (Node: auto, cpu, cuda; web: wasm, webgpu). */
  ep?: string;
  /** Intra-op threads (default: the runtime's choice). */
  threads?: number;
  /**
   * Memory-pattern planning pre-allocates for one input shape; with dynamic padding the shapes
   * change every batch, so training and probing sessions turn it off.
   */
  memPattern?: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Files referenced as external data, when the model is passed as bytes: `path` is the location
   * the model names, `data` the bytes, or the file's path on disk (platforms with files only).
   */
  externalData?: Array<{ path: string; data: Uint8Array | string }>;
  /** Extra onnxruntime session options, passed through as they are (e.g. profiling). */
  extra?: Readonly<Record<string, unknown>>;
}

/** An ONNX Runtime build for one platform: how to create sessions there and which providers it has. */
export interface RuntimeBackend {
  /** The package, e.g. `onnxruntime-node`. */
  readonly name: string;
  readonly version: string;
  /** Values `SessionOptions.ep` may take; the first is the default. */
  readonly epChoices: readonly string[];
  /** The provider that runs on the CPU everywhere (shape probing and load checks use it). */
  readonly cpuEp: string;
  /**
   * Creates a session on the requested provider, given the options every session shares;
   * returns the provider actually used.
   */
  create(model: Uint8Array | string, base: Record<string, unknown>, opts: SessionOptions): Promise<{ session: OrtSession; ep: string }>;
  /** Wraps a host tensor for a run. */
  tensor(t: TensorLike): unknown;
}

/** A session: feeds in, fetched outputs out, all as host tensors. */
export interface Session {
  /** The execution provider in use. */
  readonly ep: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Runs the model; `fetch` limits the outputs (default: all). Inputs are host tensors (or
   * anything shaped like one, such as the backend's own tensors).
   */
  run(feeds: Readonly<Record<string, TensorLike>>, fetch?: readonly string[]): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface Runtime {
  /** `onnxruntime-node 1.30.0`, for messages and manifests. */
  readonly label: string;
  readonly name: string;
  readonly version: string;
  readonly epChoices: readonly string[];
  /** The provider that runs on the CPU everywhere (shape probing and load checks use it). */
  readonly cpuEp: string;
  createSession(model: Uint8Array | string, opts?: SessionOptions): Promise<Session>;
}

/** Options every session gets; `opts` can override the graph optimisation and memory pattern. */
function baseOptions(opts: SessionOptions): Record<string, unknown> {
  return {
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    enableMemPattern: opts.memPattern ?? true,
    enableCpuMemArena: true,
    // Warnings and errors (with terminal colour codes) would go to stderr between our own lines;
    // a failure comes back as an exception and is reported once, as one line (runtimeError).
    logSeverityLevel: 4,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    ...opts.extra,
  };
}

/** A `Runtime` over one backend. */
export function createRuntime(backend: RuntimeBackend): Runtime {
  return {
    label: `${backend.name} ${backend.version}`,
    name: backend.name,
    version: backend.version,
    epChoices: backend.epChoices,
    cpuEp: backend.cpuEp,
    async createSession(model, opts = {}) {
      if (opts.ep !== undefined && !backend.epChoices.includes(opts.ep)) {
        throw new PeanutError('E_BAD_CONFIG', `execution provider '${opts.ep}' is not available with ${backend.name}; choose one of ${backend.epChoices.join(', ')}`);
      }
      let created: { session: OrtSession; ep: string };
      try {
        created = await backend.create(model, baseOptions(opts), opts);
      } catch (err) {
        throw runtimeError(err, `${backend.name} cannot load the model`);
      }
      const { session, ep } = created;
      return {
        ep,
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds, fetch) {
          const wrapped: Record<string, unknown> = {};
          for (const [k, t] of Object.entries(feeds)) wrapped[k] = backend.tensor(t);
          let out: Record<string, OrtTensor>;
          try {
            out = await session.run(wrapped, fetch);
          } catch (err) {
            throw runtimeError(err, `${backend.name} failed to run the model`);
          }
          const result: Record<string, HostTensor> = {};
          for (const [k, t] of Object.entries(out)) {
            if (t && Array.isArray(t.dims)) result[k] = { type: t.type, data: t.data as HostTensor['data'], dims: t.dims.map(Number) };
          }
          return result;
        },
        release: () => session.release(),
      };
    },
  };
}

/**
 * A runtime's own failure (a model it refuses, inputs a kernel rejects) as a one-line
 * PeanutError (E_GRAPH) quoting the runtime's first line; PeanutErrors pass unchanged.
 */
function runtimeError(err: unknown, doing: string): PeanutError {
  if (err instanceof PeanutError) return err;
  // ONNX Runtime names the file it loaded, which for a model passed as bytes is a temp file.
  const why = firstLine((err as Error)?.message ?? String(err)).replace(/^Load model from .* failed:/, '');
  return new PeanutError('E_GRAPH', `${doing}: ${why}`);
}

/** The first line of an error message, bounded (for one-line reports of runtime failures). */
export function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 300);
}
