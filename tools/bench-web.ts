/**
 * Per-step time of the shipped model's training job on every runtime a browser build can use,
 * in one run on one machine:
 *
 *   npx tsx tools/bench-web.ts [--rounds 10] [--steps-per-round 4] [--out bench/web.json]
 *
 * The job is what `peanut-onnx demo` trains (graphs/bert-tiny.onnx, PEANuT r 8 on query,value,
 * the seq-cls task in graphs/demo/, batches of 16 with dynamic padding), one train-graph run per
 * step, θ and the moments fed back; one train graph, built in Node by the library, for all:
 *
 *  - Node, onnxruntime-node (CPU EP): 1 intra-op thread, and ONNX Runtime's default;
 *  - Node, onnxruntime-web (wasm): 1 thread (its wasm module starts once per process, with one
 *    thread count);
 *  - headless Chromium, onnxruntime-web wasm: 1 and 2 threads (the page cross-origin isolated);
 *  - headless Chromium, onnxruntime-web WebGPU on SwiftShader (a CPU implementation of the GPU:
 *    it shows that the graph runs and what it costs without a GPU, not what a GPU would do).
 *
 * Every runtime keeps its session open, and the runtimes take turns (rotating order, a few steps
 * each per round), so load changes on a shared machine hit all of them alike. A step is timed
 * from building its feeds to reading its outputs; the first steps of each runtime (warm-up) are
 * not counted. Medians, with the best step and each runtime's ratio to onnxruntime-node on one
 * thread. The batches cycle through the job's first JOB_STEPS steps; WebGPU runs one step per
 * round, so it sees the first batches only (their padded lengths differ a little).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortWeb from 'onnxruntime-web';
import { createSession, ort } from '../src/node/onnxruntime.ts';
import { trainingSessionOptions } from '../src/train/training-graph.ts';
import { demoJob } from '../test/browser/demo-job.ts';
import { DEFAULT_CHROMIUM, openBrowserPage, ORT_WEB_ROUTES, type BrowserPage } from '../test/browser/harness.ts';
import { pack } from '../test/browser/pack.ts';
import type { TrainArgs } from '../test/browser/pages/train.ts';
import { TrainLoop, type StepResult } from '../test/browser/train-loop.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const JOB_STEPS = 40;
const PAGE = join(ROOT, 'test', 'browser', 'pages', 'train.ts');
const DATA = { graph: '/data/train.onnx', job: '/data/job.bin' } as const;

/** One runtime under test: how to start it and how to run n more steps. */
interface Runtime {
  id: string;
  where: 'node' | 'chromium';
  runtime: string;
  ep: string;
  threads: number | 'default';
  /** Steps per round (WebGPU on SwiftShader takes seconds a step). */
  perRound: number;
  warmup: number;
  start(): Promise<{ sessionMs: number; note?: Record<string, unknown> }>;
  steps(n: number): Promise<StepResult[]>;
  close(): Promise<void>;
}

export interface WebBenchResult {
  id: string;
  where: 'node' | 'chromium';
  runtime: string;
  ep: string;
  threads: number | 'default';
  sessionCreateMs: number;
  firstStepMs: number;
  /** Loss of the first step: the same job everywhere, so these agree to float32 rounding. */
  firstLoss: number;
  measuredSteps: number;
  medianMs: number;
  minMs: number;
  /** medianMs / (onnxruntime-node, 1 thread).medianMs */
  vsNative1Thread: number;
  /** minMs / (onnxruntime-node, 1 thread).minMs: less exposed to load from other processes. */
  vsNative1ThreadBest: number;
  note?: Record<string, unknown>;
}

export interface WebBench {
  what: string;
  machine: { cpus: number; cpuModel: string; loadavgStart: number[]; loadavgEnd: number[]; node: string; chromium: string; onnxruntime: { node: string; web: string } };
  job: { model: string; method: string; rank: number; targets: string; task: string; batchSize: number; trainableParams: number; jobSteps: number };
  rounds: number;
  results: WebBenchResult[];
  seconds: number;
}

const round3 = (x: number) => Number(x.toFixed(3));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function nodeRuntime(id: string, runtime: 'onnxruntime-node' | 'onnxruntime-web', threads: number | 'default', graph: Uint8Array, job: Awaited<ReturnType<typeof demoJob>>['job']): Runtime {
  let loop: TrainLoop | undefined;
  let release: (() => Promise<void>) | undefined;
  return {
    id,
    where: 'node',
    runtime,
    ep: runtime === 'onnxruntime-node' ? 'cpu' : 'wasm',
    threads,
    perRound: 4,
    warmup: 8,
    async start() {
      const t0 = performance.now();
      if (runtime === 'onnxruntime-node') {
        const { session } = await createSession(graph, { ...trainingSessionOptions(threads === 'default' ? {} : { threads }), ep: 'cpu' });
        loop = new TrainLoop(ort, session, job);
        release = () => session.release();
      } else {
        // onnxruntime-web starts its wasm module once per process, with the thread count set then.
        ortWeb.env.wasm.numThreads = threads === 'default' ? 0 : threads;
        const session = await ortWeb.InferenceSession.create(graph, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableMemPattern: false });
        loop = new TrainLoop(ortWeb, session, job);
        release = () => session.release();
      }
      return { sessionMs: performance.now() - t0 };
    },
    async steps(n) {
      const out: StepResult[] = [];
      for (let i = 0; i < n; i++) out.push(await loop!.step());
      return out;
    },
    close: async () => release?.(),
  };
}

function chromiumRuntime(id: string, args: Omit<TrainArgs, 'graph' | 'job'>, routes: Parameters<typeof openBrowserPage>[0]['routes']): Runtime {
  let page: BrowserPage | undefined;
  const webgpu = args.ep === 'webgpu';
  return {
    id,
    where: 'chromium',
    runtime: `onnxruntime-web (${args.bundle} build)`,
    ep: webgpu ? 'webgpu (SwiftShader)' : 'wasm',
    threads: args.threads,
    perRound: webgpu ? 1 : 4,
    warmup: webgpu ? 2 : 8,
    async start() {
      page = await openBrowserPage({ entry: PAGE, routes, webgpu });
      const note: Record<string, unknown> = {};
      if (webgpu) note.adapter = await page.call('gpuAdapter');
      const r = await page.call<{ sessionMs: number; crossOriginIsolated: boolean; numThreads: number }>('startTraining', { ...args, ...DATA } satisfies TrainArgs);
      if (r.numThreads !== args.threads) throw new Error(`${id}: onnxruntime-web runs ${r.numThreads} thread(s), not ${args.threads} (cross-origin isolated: ${r.crossOriginIsolated})`);
      return { sessionMs: r.sessionMs, note };
    },
    steps: (n) => page!.call<StepResult[]>('trainSteps', { n }),
    close: async () => page?.close(),
  };
}

/**
 * Runs the benchmark.
 *
 * @param o - rounds of interleaved steps, and steps per round for the CPU runtimes.
 */
export async function benchWeb(o: { rounds?: number; stepsPerRound?: number; onLog?: (line: string) => void } = {}): Promise<WebBench> {
  const started = performance.now();
  const log = o.onLog ?? (() => {});
  const rounds = o.rounds ?? 10;
  const loadavgStart = loadavg().map(round3);
  const demo = await demoJob(JOB_STEPS);
  const routes = { ...ORT_WEB_ROUTES, [DATA.graph]: { body: demo.trainGraph }, [DATA.job]: { body: pack(demo.job) } };
  const runtimes: Runtime[] = [
    nodeRuntime('node-native-1t', 'onnxruntime-node', 1, demo.trainGraph, demo.job),
    nodeRuntime('node-native', 'onnxruntime-node', 'default', demo.trainGraph, demo.job),
    nodeRuntime('node-wasm-1t', 'onnxruntime-web', 1, demo.trainGraph, demo.job),
    chromiumRuntime('chromium-wasm-1t', { bundle: 'wasm', ep: 'wasm', threads: 1 }, routes),
    chromiumRuntime('chromium-wasm-2t', { bundle: 'wasm', ep: 'wasm', threads: 2 }, routes),
    chromiumRuntime('chromium-webgpu-swiftshader', { bundle: 'webgpu', ep: 'webgpu', threads: 1 }, routes),
  ];
  if (o.stepsPerRound) for (const r of runtimes) if (r.perRound > 1) r.perRound = o.stepsPerRound;
  const times = new Map<string, number[]>(runtimes.map((r) => [r.id, []]));
  const first = new Map<string, StepResult>();
  const info = new Map<string, { sessionMs: number; note?: Record<string, unknown> }>();
  try {
    for (const r of runtimes) {
      info.set(r.id, await r.start());
      const warm = await r.steps(r.warmup);
      first.set(r.id, warm[0]!);
      log(`${r.id}: session ${info.get(r.id)!.sessionMs.toFixed(0)} ms, first step ${warm[0]!.ms.toFixed(0)} ms`);
    }
    for (let round = 0; round < rounds; round++) {
      const order = runtimes.map((_, i) => runtimes[(i + round) % runtimes.length]!);
      for (const r of order) for (const s of await r.steps(r.perRound)) times.get(r.id)!.push(s.ms);
      log(`round ${round + 1}/${rounds}: ${runtimes.map((r) => `${r.id} ${median(times.get(r.id)!).toFixed(1)}`).join(', ')}`);
    }
  } finally {
    for (const r of runtimes) await r.close().catch(() => {});
  }
  const base = median(times.get('node-native-1t')!);
  const baseBest = Math.min(...times.get('node-native-1t')!);
  const results: WebBenchResult[] = runtimes.map((r) => {
    const t = times.get(r.id)!;
    return {
      id: r.id,
      where: r.where,
      runtime: r.runtime,
      ep: r.ep,
      threads: r.threads,
      sessionCreateMs: round3(info.get(r.id)!.sessionMs),
      firstStepMs: round3(first.get(r.id)!.ms),
      firstLoss: first.get(r.id)!.loss,
      measuredSteps: t.length,
      medianMs: round3(median(t)),
      minMs: round3(Math.min(...t)),
      vsNative1Thread: Number((median(t) / base).toFixed(2)),
      vsNative1ThreadBest: Number((Math.min(...t) / baseBest).toFixed(2)),
      ...(info.get(r.id)!.note && Object.keys(info.get(r.id)!.note!).length ? { note: info.get(r.id)!.note } : {}),
    };
  });
  let chromium = 'unknown';
  try {
    chromium = execFileSync(process.env.CHROMIUM ?? DEFAULT_CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // reported as unknown
  }
  return {
    what: "per-step time of the shipped model's training job, runtimes interleaved; see tools/bench-web.ts",
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadavgStart,
      loadavgEnd: loadavg().map(round3),
      node: process.version,
      chromium,
      onnxruntime: { node: ort.env.versions.node ?? 'unknown', web: ortWeb.env.versions.web ?? 'unknown' },
    },
    job: {
      model: 'graphs/bert-tiny.onnx',
      method: 'peanut',
      rank: 8,
      targets: 'query,value',
      task: 'seq-cls (graphs/demo/train.jsonl)',
      batchSize: demo.trainOptions.batchSize,
      trainableParams: demo.job.params.reduce((s, p) => s + p.data.length, 0),
      jobSteps: JOB_STEPS,
    },
    rounds,
    results,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
}

async function main(argv: string[]): Promise<void> {
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const out = resolve(flag('--out') ?? join(ROOT, 'bench', 'web.json'));
  const result = await benchWeb({
    rounds: flag('--rounds') ? Number(flag('--rounds')) : undefined,
    stepsPerRound: flag('--steps-per-round') ? Number(flag('--steps-per-round')) : undefined,
    onLog: (line) => console.error(line),
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
  for (const r of result.results) console.log(`${r.id.padEnd(28)} median ${r.medianMs.toFixed(1).padStart(8)} ms  best ${r.minMs.toFixed(1).padStart(8)} ms  ×${r.vsNative1Thread} (best ×${r.vsNative1ThreadBest})  (${r.measuredSteps} steps)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
