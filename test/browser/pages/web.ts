/**
 * Page module for `peanut-onnx/web` in Chromium: loads onnxruntime-web from /ort/ (the build the
 * caller names), fetches an adapted model and the data, and runs the library's own `train`,
 * `merge` and `evaluate` on them — the code a web page using the package runs. Called from Node
 * through the harness.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { evaluate, merge, train, type EvalMetrics } from '../../../src/web.ts';
import { stepClock } from '../step-clock.ts';

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

export interface JobArgs {
  bundle: OrtBundle;
  ep: 'wasm' | 'webgpu';
  /** wasm threads (more than 1 needs a cross-origin isolated page). */
  threads: number;
  /** URLs of the adapted model and of the JSONL data. */
  model: string;
  train: string;
  eval?: string;
  steps?: number;
  epochs?: number;
  batchSize: number;
  lr: number;
  seed: number;
  evalEvery?: number;
  /** Merge the result and measure the merged model's accuracy on the eval data. */
  mergeAndEvaluate?: boolean;
  /** ONNX Runtime's log level for the training session; `verbose` logs node placement. */
  logLevel?: 'verbose' | 'warning';
}

export interface JobResult {
  params: Record<string, Float32Array>;
  checkpoint: Uint8Array;
  losses: number[];
  evals: Array<{ step: number } & EvalMetrics>;
  /** Wall time between consecutive step events (the first: from the start event), ms. */
  stepMs: number[];
  merged?: Uint8Array;
  mergedAccuracy?: number;
  ep: string;
  crossOriginIsolated: boolean;
  numThreads: number;
  userAgent: string;
}

/** Runs one training job with the library, as a page using `peanut-onnx/web` would. */
export async function runJob(a: JobArgs): Promise<JobResult> {
  const ort = await loadOrt(a.bundle);
  ort.env.wasm.numThreads = a.threads;
  if (a.logLevel) ort.env.logLevel = a.logLevel;
  const [model, data, evalData] = await Promise.all([fetchBytes(a.model), fetchBytes(a.train), a.eval ? fetchBytes(a.eval) : undefined]);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const clock = stepClock();
  const r = await train({
    ort,
    model,
    task: 'seq-cls',
    data: text(data),
    ...(evalData ? { eval: text(evalData) } : {}),
    ...(a.steps !== undefined ? { steps: a.steps } : {}),
    ...(a.epochs !== undefined ? { epochs: a.epochs } : {}),
    batchSize: a.batchSize,
    lr: a.lr,
    seed: a.seed,
    ep: a.ep,
    ...(a.evalEvery !== undefined ? { evalEvery: a.evalEvery } : {}),
    ...(a.logLevel === 'verbose' ? { sessionOptions: { logSeverityLevel: 0, logVerbosityLevel: 0 } } : {}),
    onEvent: clock.onEvent,
  });
  const out: JobResult = {
    params: Object.fromEntries(Object.entries(r.params).map(([k, t]) => [k, t.data as Float32Array])),
    checkpoint: r.checkpoint,
    losses: r.metrics.map((m) => m.loss as number),
    evals: r.evals,
    stepMs: clock.result().stepMs,
    ep: r.ep,
    crossOriginIsolated: self.crossOriginIsolated,
    numThreads: ort.env.wasm.numThreads ?? 0,
    userAgent: navigator.userAgent,
  };
  if (a.mergeAndEvaluate && evalData) {
    out.merged = merge({ model, checkpoint: r.checkpoint });
    out.mergedAccuracy = (await evaluate({ ort, model: out.merged, task: 'seq-cls', data: text(evalData), ep: a.ep })).accuracy;
  }
  return out;
}
