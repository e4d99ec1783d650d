/**
 * Page module for the training runs: loads onnxruntime-web from /ort/ (the bundle the caller
 * names), creates a session of a train graph fetched as bytes, and runs a `TrainJob` with the
 * same loop as Node (`runTrainSteps`). Called from Node through the harness.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { unpack } from '../pack.ts';
import { runTrainSteps, TrainLoop, type StepResult, type TrainJob, type TrainRun } from '../train-loop.ts';

type Ort = typeof OrtWeb;

/** onnxruntime-web's builds: `wasm` (CPU only) and `webgpu` (WebGPU, with the CPU as fallback). */
export type OrtBundle = 'wasm' | 'webgpu';

let loaded: { bundle: OrtBundle; ort: Ort } | undefined;

/** One onnxruntime-web per page: its wasm module starts once, with the thread count set then. */
async function loadOrt(bundle: OrtBundle): Promise<Ort> {
  if (loaded && loaded.bundle !== bundle) throw new Error(`this page already loaded onnxruntime-web's ${loaded.bundle} build; reload it to use ${bundle}`);
  if (!loaded) {
    const url = `/ort/ort.${bundle}.min.mjs`;
    loaded = { bundle, ort: (await import(/* @vite-ignore */ url)) as Ort };
  }
  return loaded.ort;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  features: Iterable<string>;
}

/** What `navigator.gpu.requestAdapter()` gives on this browser. */
export async function gpuAdapter(): Promise<{ navigatorGpu: boolean; adapter: null | { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean; features: string[] } }> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
  if (!gpu) return { navigatorGpu: false, adapter: null };
  const a = await gpu.requestAdapter();
  if (!a) return { navigatorGpu: true, adapter: null };
  const info = a.info ?? {};
  return {
    navigatorGpu: true,
    adapter: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: info.isFallbackAdapter, features: [...a.features].sort() },
  };
}

export interface TrainArgs {
  bundle: OrtBundle;
  /** Execution provider: `wasm` (CPU) or `webgpu`. */
  ep: 'wasm' | 'webgpu';
  /** wasm threads (more than 1 needs a cross-origin isolated page). */
  threads: number;
  /** URLs of the train graph and of the `pack`ed `TrainJob`. */
  graph: string;
  job: string;
  /** Run only the first `steps` steps of the job. */
  steps?: number;
  /** ONNX Runtime's log level for the session (default warning); `verbose` logs node placement. */
  logLevel?: 'verbose' | 'info' | 'warning' | 'error';
}

export interface TrainResult {
  run: TrainRun;
  sessionMs: number;
  crossOriginIsolated: boolean;
  numThreads: number;
  userAgent: string;
}

/** The session (options as `peanut-onnx train`: memory pattern off, optimization all) and the job. */
async function openSession(a: TrainArgs): Promise<{ ort: Ort; session: OrtWeb.InferenceSession; job: TrainJob; sessionMs: number }> {
  const ort = await loadOrt(a.bundle);
  ort.env.wasm.numThreads = a.threads;
  const [graph, job] = await Promise.all([fetchBytes(a.graph), fetchBytes(a.job).then((b) => unpack<TrainJob>(b))]);
  const logSeverityLevel = ({ verbose: 0, info: 1, warning: 2, error: 3 } as const)[a.logLevel ?? 'warning'];
  if (a.logLevel) ort.env.logLevel = a.logLevel;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(graph, { executionProviders: [a.ep], graphOptimizationLevel: 'all', enableMemPattern: false, logSeverityLevel });
  return { ort, session, job, sessionMs: performance.now() - t0 };
}

function environment(ort: Ort) {
  return { crossOriginIsolated: self.crossOriginIsolated, numThreads: ort.env.wasm.numThreads ?? 0, userAgent: navigator.userAgent };
}

/** Runs the job's steps (or its first `a.steps`) in a session of its own, released after. */
export async function train(a: TrainArgs): Promise<TrainResult> {
  const { ort, session, job, sessionMs } = await openSession(a);
  try {
    const run = await runTrainSteps(ort, session, job, a.steps);
    return { run, sessionMs, ...environment(ort) };
  } finally {
    await session.release();
  }
}

let current: TrainLoop | undefined;

/** Opens a session and a run of the job that `trainSteps` advances (for interleaved timing). */
export async function startTraining(a: TrainArgs): Promise<Omit<TrainResult, 'run'>> {
  if (current) throw new Error('this page already has a training run; reload it first');
  const { ort, session, job, sessionMs } = await openSession(a);
  current = new TrainLoop(ort, session, job);
  return { sessionMs, ...environment(ort) };
}

/** Runs `n` more steps of the run `startTraining` opened. */
export async function trainSteps(a: { n: number }): Promise<StepResult[]> {
  if (!current) throw new Error('no training run on this page; call startTraining first');
  const out: StepResult[] = [];
  for (let i = 0; i < a.n; i++) out.push(await current.step());
  return out;
}
