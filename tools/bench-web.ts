/**
 * Per-step time of the shipped model's training with the library, on every runtime a browser
 * build can use, in one run on one machine:
 *
 *   npx tsx tools/bench-web.ts [--rounds 6] [--steps 12] [--webgpu] [--out bench/web.json]
 *
 * The job: graphs/bert-tiny.onnx adapted as `peanut-onnx demo` does (PEANuT r 8 on query,value),
 * the seq-cls task in graphs/demo/, batches of 16 with dynamic padding, lr 3e-3, seed 0. Each
 * runtime runs the library's own training (`train()` of the Node library, `train()` of
 * `peanut-onnx/web`: graph built, session created, the loop run):
 *
 *  - Node, onnxruntime-node (CPU EP): 1 intra-op thread, and ONNX Runtime's default;
 *  - Node, onnxruntime-web (wasm), 1 thread (its wasm module starts once per process, with one
 *    thread count);
 *  - headless Chromium, onnxruntime-web wasm: 1 and 2 threads (the page cross-origin isolated);
 *  - with --webgpu, headless Chromium, WebGPU on SwiftShader (a CPU implementation of the GPU:
 *    it shows the graph runs and what it costs without a GPU, not what a GPU would do).
 *
 * The runtimes take turns (rotating order, one run of --steps steps each per round), so load
 * changes on a shared machine hit all of them alike. A step's time is the wall time between
 * consecutive step events of the run (feeds built, graph run, outputs read, metrics line
 * written); the first WARMUP steps of every run are not counted (session warm-up). Medians, the
 * best step, and each runtime's ratio to onnxruntime-node on one thread.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortWeb from 'onnxruntime-web';
import { injectFile, train as trainOnNode } from '../src/index.ts';
import { ort } from '../src/node/onnxruntime.ts';
import { train as trainOnWeb } from '../src/web.ts';
import { DEFAULT_CHROMIUM, openBrowserPage, ORT_WEB_ROUTES, type BrowserPage } from '../test/browser/harness.ts';
import type { JobArgs, JobResult } from '../test/browser/pages/web.ts';
import { stepClock } from '../test/browser/step-clock.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = join(ROOT, 'graphs', 'bert-tiny.onnx');
const TRAIN = join(ROOT, 'graphs', 'demo', 'train.jsonl');
const PAGE = join(ROOT, 'test', 'browser', 'pages', 'web.ts');
const URLS = { model: '/data/adapted.onnx', train: '/data/train.jsonl' } as const;
const JOB = { batchSize: 16, lr: 3e-3, seed: 0 } as const;
/** Steps of each run not counted (the session's first runs allocate and warm up). */
const WARMUP = 3;

/** One runtime under test: one training run of `steps` steps gives each step's wall time. */
interface Contender {
  id: string;
  where: 'node' | 'chromium';
  runtime: string;
  ep: string;
  threads: number | 'default';
  steps?: number;
  run(steps: number): Promise<{ stepMs: number[]; firstLoss: number }>;
  close(): Promise<void>;
}

export interface WebBenchResult {
  id: string;
  where: 'node' | 'chromium';
  runtime: string;
  ep: string;
  threads: number | 'default';
  /** Loss of the first step: the same job everywhere, so these agree to float32 rounding. */
  firstLoss: number;
  measuredSteps: number;
  medianMs: number;
  minMs: number;
  /** medianMs / (onnxruntime-node, 1 thread).medianMs */
  vsNative1Thread: number;
  /** minMs / (onnxruntime-node, 1 thread).minMs: less exposed to load from other processes. */
  vsNative1ThreadBest: number;
}

export interface WebBench {
  what: string;
  machine: { cpus: number; cpuModel: string; loadavgStart: number[]; loadavgEnd: number[]; node: string; chromium: string; onnxruntime: { node: string; web: string } };
  job: { model: string; method: string; rank: number; targets: string; task: string; batchSize: number; lr: number; stepsPerRun: number; warmupStepsNotCounted: number };
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

function nodeNative(id: string, threads: number | 'default', adapted: string, work: string): Contender {
  let n = 0;
  return {
    id,
    where: 'node',
    runtime: 'onnxruntime-node',
    ep: 'cpu',
    threads,
    async run(steps) {
      const clock = stepClock();
      const outDir = join(work, `${id}-${n++}`);
      await trainOnNode(adapted, { data: TRAIN, outDir, steps, ...JOB, task: 'seq-cls', ep: 'cpu', ...(threads === 'default' ? {} : { threads }), saveEvery: 0, onEvent: clock.onEvent });
      rmSync(outDir, { recursive: true, force: true });
      return clock.result();
    },
    close: async () => {},
  };
}

function nodeWasm(adapted: Uint8Array): Contender {
  const data = readFileSync(TRAIN, 'utf8');
  return {
    id: 'node-wasm-1t',
    where: 'node',
    runtime: 'onnxruntime-web',
    ep: 'wasm',
    threads: 1,
    async run(steps) {
      // onnxruntime-web starts its wasm module once per process, with the thread count set then.
      ortWeb.env.wasm.numThreads = 1;
      const clock = stepClock();
      await trainOnWeb({ ort: ortWeb, model: adapted, task: 'seq-cls', data, steps, ...JOB, ep: 'wasm', onEvent: clock.onEvent });
      return clock.result();
    },
    close: async () => {},
  };
}

function chromium(id: string, args: Pick<JobArgs, 'bundle' | 'ep' | 'threads'>, routes: Parameters<typeof openBrowserPage>[0]['routes'], steps?: number): Contender {
  let page: BrowserPage | undefined;
  const webgpu = args.ep === 'webgpu';
  return {
    id,
    where: 'chromium',
    runtime: `onnxruntime-web (${args.bundle} build)`,
    ep: webgpu ? 'webgpu (SwiftShader)' : 'wasm',
    threads: args.threads,
    ...(steps ? { steps } : {}),
    async run(n) {
      page ??= await openBrowserPage({ entry: PAGE, routes, webgpu });
      const r = await page.call<JobResult>('runJob', { ...args, ...URLS, steps: n, ...JOB } satisfies JobArgs);
      if (r.numThreads !== args.threads) throw new Error(`${id}: onnxruntime-web runs ${r.numThreads} thread(s), not ${args.threads} (cross-origin isolated: ${r.crossOriginIsolated})`);
      return { stepMs: r.stepMs, firstLoss: r.losses[0]! };
    },
    close: async () => page?.close(),
  };
}

/**
 * Runs the benchmark.
 *
 * @param o - rounds, steps per run, and whether to include WebGPU on SwiftShader.
 */
export async function benchWeb(o: { rounds?: number; steps?: number; webgpu?: boolean; onLog?: (line: string) => void } = {}): Promise<WebBench> {
  const started = performance.now();
  const log = o.onLog ?? (() => {});
  const rounds = o.rounds ?? 6;
  const steps = o.steps ?? 12;
  const loadavgStart = loadavg().map(round3);
  const work = mkdtempSync(join(tmpdir(), 'peanut-bench-web-'));
  const adaptedPath = join(work, 'adapted.onnx');
  await injectFile(MODEL, adaptedPath, { method: 'peanut', r: 8, targets: 'query,value', seed: 0 });
  const adapted = readFileSync(adaptedPath);
  const routes = { ...ORT_WEB_ROUTES, [URLS.model]: { file: adaptedPath }, [URLS.train]: { file: TRAIN } };
  const contenders: Contender[] = [
    nodeNative('node-native-1t', 1, adaptedPath, work),
    nodeNative('node-native', 'default', adaptedPath, work),
    nodeWasm(adapted),
    chromium('chromium-wasm-1t', { bundle: 'wasm', ep: 'wasm', threads: 1 }, routes),
    chromium('chromium-wasm-2t', { bundle: 'wasm', ep: 'wasm', threads: 2 }, routes),
    ...(o.webgpu ? [chromium('chromium-webgpu-swiftshader', { bundle: 'webgpu', ep: 'webgpu', threads: 1 }, routes, WARMUP + 2)] : []),
  ];
  const times = new Map<string, number[]>(contenders.map((c) => [c.id, []]));
  const firstLoss = new Map<string, number>();
  try {
    for (let round = 0; round < rounds; round++) {
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]!);
      for (const c of order) {
        const r = await c.run(c.steps ?? steps);
        times.get(c.id)!.push(...r.stepMs.slice(WARMUP));
        firstLoss.set(c.id, r.firstLoss);
      }
      log(`round ${round + 1}/${rounds}: ${contenders.map((c) => `${c.id} ${median(times.get(c.id)!).toFixed(1)} ms`).join(', ')}`);
    }
  } finally {
    for (const c of contenders) await c.close().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
  const base = median(times.get('node-native-1t')!);
  const baseBest = Math.min(...times.get('node-native-1t')!);
  const results: WebBenchResult[] = contenders.map((c) => {
    const t = times.get(c.id)!;
    return {
      id: c.id,
      where: c.where,
      runtime: c.runtime,
      ep: c.ep,
      threads: c.threads,
      firstLoss: firstLoss.get(c.id)!,
      measuredSteps: t.length,
      medianMs: round3(median(t)),
      minMs: round3(Math.min(...t)),
      vsNative1Thread: Number((median(t) / base).toFixed(2)),
      vsNative1ThreadBest: Number((Math.min(...t) / baseBest).toFixed(2)),
    };
  });
  let chromiumVersion = 'unknown';
  try {
    chromiumVersion = execFileSync(process.env.CHROMIUM ?? DEFAULT_CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // reported as unknown
  }
  return {
    what: "per-step time of the library's training of the shipped model, runtimes interleaved; see tools/bench-web.ts",
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadavgStart,
      loadavgEnd: loadavg().map(round3),
      node: process.version,
      chromium: chromiumVersion,
      onnxruntime: { node: ort.env.versions.node ?? 'unknown', web: ortWeb.env.versions.web ?? 'unknown' },
    },
    job: { model: 'graphs/bert-tiny.onnx', method: 'peanut', rank: 8, targets: 'query,value', task: 'seq-cls (graphs/demo/train.jsonl)', batchSize: JOB.batchSize, lr: JOB.lr, stepsPerRun: steps, warmupStepsNotCounted: WARMUP },
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
    steps: flag('--steps') ? Number(flag('--steps')) : undefined,
    webgpu: argv.includes('--webgpu'),
    onLog: (line) => console.error(line),
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
  for (const r of result.results) console.log(`${r.id.padEnd(28)} median ${r.medianMs.toFixed(1).padStart(8)} ms  best ${r.minMs.toFixed(1).padStart(8)} ms  ×${r.vsNative1Thread} (best ×${r.vsNative1ThreadBest})  (${r.measuredSteps} steps)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
