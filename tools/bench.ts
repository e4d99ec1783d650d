/**
 * `npm run bench`: what PEANuT costs, measured side by side in one run on one machine.
 *
 *   npx tsx tools/bench.ts [--models tiny,base] [--runs N] [--threads T] [--out bench/results.json]
 *                          [--no-pytorch] [--wait-load L]
 *   npx tsx tools/bench.ts --table [bench/results.json]     (the markdown table of a results file)
 *
 * For the shipped demo model (graphs/bert-tiny.onnx) and a bert-base-sized export generated on
 * the fly (tools/lib buildBertBase, written to bench/work/, never committed), on one batch of
 * 8 × 128 tokens, PEANuT and LoRA at rank 8 on query,value (PEANuT depth 0), T intra-op threads
 * (default 2) everywhere:
 *
 *  - frozen forward: the original model, one inference call;
 *  - training step: one run of the fused train graph (forward + loss + backward + AdamW), built
 *    and run exactly as `peanut-onnx train` does, θ and moments fed back each step;
 *  - the PyTorch reference (tools/pytorch-reference.py, when /usr/bin/python3 has torch and onnx):
 *    the same export's weights in a plain PyTorch BERT, same batch, same threads; its frozen
 *    forward (no_grad), PEANuT step and LoRA step (forward + cross-entropy + backward + AdamW on θ);
 *  - forward, PEANuT step and LoRA step of both runtimes are timed interleaved (one call of each
 *    per round, rotating order; the reference is a child process driven line by line), so load
 *    changes on a shared machine affect all six alike; the reference's logits are checked
 *    against ONNX Runtime's on the same batch;
 *  - merged vs original inference time (same batch, calls alternated);
 *  - inject (load + inject + save) and merge (load + merge + save, streaming, as the CLI runs
 *    them) vs a plain copy of the file; every output is fsynced before its rename, so the copy
 *    is timed with its fsync too;
 *  - peak resident memory of each job, ONNX Runtime's and PyTorch's (each job runs in its own
 *    process, so its peak is its own: loading, building and the steps).
 *
 * Times are medians (and best) over several runs after warm-up. Every ratio comes from this run on
 * this machine; without torch the PyTorch cells stay null and the output says so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Random } from '../src/util/random.ts';
import { fileURLToPath } from 'node:url';
import { bertBaseConfig } from './lib/bert.ts';
import { BERT_TINY_CONFIG } from './lib/demo-graphs.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work');
const TINY = join(ROOT, 'graphs', 'bert-tiny.onnx');
const BASE = join(WORK, 'bert-base.onnx');
const REFERENCE = join(ROOT, 'tools', 'pytorch-reference.py');
/** The interpreter with torch: PEANUT_BENCH_PYTHON, else Debian's (python3-torch), else python3. */
const PYTHON = process.env.PEANUT_BENCH_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
/** Attention heads of the two models, for the reference. */
const HEADS = { tiny: BERT_TINY_CONFIG.numHeads, base: bertBaseConfig().numHeads } as const;

/** Pause before each interleaved call (ms). */
const SETTLE_MS = Number(process.env.PEANUT_BENCH_SETTLE_MS ?? 100);

/** Extra ONNX Runtime options for the train sessions (JSON), to measure what they cost. */
const TRAIN_EXTRA = process.env.PEANUT_BENCH_TRAIN_EXTRA ? (JSON.parse(process.env.PEANUT_BENCH_TRAIN_EXTRA) as Record<string, unknown>) : undefined;

const BATCH = 8;
const SEQ = 128;
const RANK = 8;
const TARGETS = 'query,value';

type ModelKey = 'tiny' | 'base';
type Job = 'forward' | 'train-peanut' | 'train-lora' | 'train-run' | 'interleaved' | 'io';

interface Timing {
  medianMs: number;
  minMs: number;
  runs: number[];
}

function timing(runs: number[]): Timing {
  const s = [...runs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  const r3 = (x: number) => Number(x.toFixed(3));
  return { medianMs: r3(median), minMs: r3(s[0]!), runs: runs.map(r3) };
}

/**
 * Peak resident memory of this process. Linux: VmHWM of /proc/self/status, which starts afresh at
 * exec (getrusage's maxrss would carry over the high-water mark of the parent that spawned us).
 */
function maxRssMiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number((Number(m[1]) / 1024).toFixed(1));
  } catch {
    // not Linux
  }
  return Number((process.resourceUsage().maxRSS / 1024).toFixed(1));
}

// ---------------------------------------------------------------------------------------------
// Workers: one job, one process; the last stdout line is the JSON result.
// ---------------------------------------------------------------------------------------------

/** The bench's one batch: seeded token ids (token 0 = [CLS] id 1), full attention, labels alternating. */
function benchBatch(model: ModelKey): { ids: number[]; labels: number[] } {
  const vocab = model === 'tiny' ? BERT_TINY_CONFIG.vocabSize : bertBaseConfig().vocabSize;
  const rng = new Random(1234);
  return {
    ids: Array.from({ length: BATCH * SEQ }, (_, i) => (i % SEQ === 0 ? 1 : 4 + rng.int(vocab - 4))),
    labels: Array.from({ length: BATCH }, (_, i) => i % 2),
  };
}

const batchFile = (model: ModelKey) => join(WORK, `batch-${model}.json`);

/** Where the `train-run` job finds its adapted model and data. */
const runDir = (model: ModelKey) => join(WORK, `train-run-${model}`);

/** Writes the PEANuT-adapted model and `steps` batches of the bench batch as JSONL for `train-run`. */
async function prepareTrainRun(model: ModelKey, steps: number): Promise<void> {
  const { inject } = await import('../src/adapter/inject.ts');
  const { loadModel, saveModel } = await import('../src/node/model-files.ts');
  const dir = runDir(model);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  saveModel(inject(loadModel(model === 'tiny' ? TINY : BASE), { method: 'peanut', r: RANK, depth: 0, alpha: 2 * RANK, targets: TARGETS, seed: 0 }).model, join(dir, 'adapted.onnx'));
  const { ids, labels } = benchBatch(model);
  const lines: string[] = [];
  for (let k = 0; k < steps; k++) for (let b = 0; b < BATCH; b++) lines.push(JSON.stringify({ input_ids: ids.slice(b * SEQ, (b + 1) * SEQ), label: labels[b] }));
  writeFileSync(join(dir, 'train.jsonl'), `${lines.join('\n')}\n`);
}

/** Writes the batch for the reference (rows of token ids, labels). */
function writeBatchFile(model: ModelKey): void {
  const { ids, labels } = benchBatch(model);
  const rows = Array.from({ length: BATCH }, (_, b) => ids.slice(b * SEQ, (b + 1) * SEQ));
  writeFileSync(batchFile(model), `${JSON.stringify({ input_ids: rows, labels })}\n`);
}

function referenceArgs(model: ModelKey, threads: number, jobs: string): string[] {
  return [
    REFERENCE,
    '--model', model === 'tiny' ? TINY : BASE,
    '--heads', String(HEADS[model]),
    '--batch-file', batchFile(model),
    '--threads', String(threads),
    '--rank', String(RANK),
    '--alpha', String(2 * RANK),
    '--targets', TARGETS,
    '--jobs', jobs,
  ];
}

/** The PyTorch reference as a child process: one command a line, one JSON line back. */
class Reference {
  readonly #proc;
  readonly #replies: Array<(line: string) => void> = [];
  readonly #lines: string[] = [];
  #stderr = '';
  #exit: string | undefined;

  constructor(model: ModelKey, threads: number, jobs: string) {
    this.#proc = spawn(PYTHON, referenceArgs(model, threads, jobs), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#proc.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    createInterface({ input: this.#proc.stdout }).on('line', (line) => {
      const waiting = this.#replies.shift();
      if (waiting) waiting(line);
      else this.#lines.push(line);
    });
    this.#proc.on('exit', (code) => {
      this.#exit = `the PyTorch reference exited (status ${code}): ${this.#stderr.trim().split('\n').at(-1) ?? ''}`;
      for (const w of this.#replies.splice(0)) w('');
    });
  }

  #next(): Promise<Record<string, unknown>> {
    const parse = (line: string) => {
      if (!line) throw new Error(this.#exit ?? 'the PyTorch reference closed its output');
      return JSON.parse(line) as Record<string, unknown>;
    };
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(parse(queued));
    if (this.#exit) return Promise.reject(new Error(this.#exit));
    return new Promise((res, rej) => this.#replies.push((line) => {
      try {
        res(parse(line));
      } catch (e) {
        rej(e);
      }
    }));
  }

  ready(): Promise<Record<string, unknown>> {
    return this.#next();
  }

  send(cmd: string): Promise<Record<string, unknown>> {
    this.#proc.stdin.write(`${cmd}\n`);
    return this.#next();
  }

  async close(): Promise<void> {
    if (!this.#exit) await this.send('quit');
  }
}

async function worker(job: Job, model: ModelKey, runs: number, warmup: number, threads: number, withTorch: boolean): Promise<Record<string, unknown>> {
  const { ort, createSession } = await import('../src/node/onnxruntime.ts');
  const { graphOf } = await import('../src/onnx/model.ts');
  const { loadModel, saveModel } = await import('../src/node/model-files.ts');
  const path = model === 'tiny' ? TINY : BASE;

  const batch = benchBatch(model);
  const ids = BigInt64Array.from(batch.ids, (v) => BigInt(v));
  const feedsFor = () => ({
    input_ids: new ort.Tensor('int64', ids, [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ).fill(1n), [BATCH, SEQ]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ), [BATCH, SEQ]),
  });
  const now = () => performance.now();

  if (job === 'forward') {
    const t0 = now();
    const { session } = await createSession(path, { ep: 'cpu', threads });
    const createMs = now() - t0;
    const feeds = feedsFor();
    for (let i = 0; i < warmup; i++) await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = now();
      await session.run(feeds);
      times.push(now() - s);
    }
    await session.release();
    return { job, model, sessionCreateMs: Math.round(createMs), forward: timing(times), peakRssMiB: maxRssMiB() };
  }

  /** A training session built exactly as `peanut-onnx train` builds it; `step()` runs one step. */
  const makeTrainer = async (method: 'peanut' | 'lora') => {
    const { inject } = await import('../src/adapter/inject.ts');
    const { buildTrainingPlan, graphBytes } = await import('../src/train/plan.ts');
    const { nodeRuntime } = await import('../src/node/onnxruntime.ts');
    const { TRAIN_OUTPUTS, trainingSessionOptions } = await import('../src/train/training-graph.ts');
    const { planToSessionRun } = await import('../src/node/artifacts.ts');
    const { adamWScalarFeeds } = await import('../src/train/adamw.ts');
    let t0 = now();
    const base = loadModel(path);
    const adapted = inject(base, { method, r: RANK, depth: 0, alpha: 2 * RANK, targets: TARGETS, seed: 0 }).model;
    const injectMs = now() - t0;
    const mib = () => Math.round(process.memoryUsage.rss() / 2 ** 20);
    const rssStages: Record<string, number> = { afterInject: mib() };
    t0 = now();
    const built = await buildTrainingPlan(nodeRuntime, adapted, { task: 'seq-cls' });
    const buildMs = now() - t0;
    rssStages.afterBuild = mib();
    const trainProto = built.graphs.train;
    const nodeCounts: Record<string, number> = {};
    for (const n of graphOf({ proto: trainProto, baseDir: adapted.baseDir }).node) nodeCounts[n.opType] = (nodeCounts[n.opType] ?? 0) + 1;
    const trainNodes = trainProto.graph!.node.length;
    const forwardNodes = graphOf(base).node.length;
    t0 = now();
    // As `train <adapted.onnx>` runs it: the graphs encoded with the weights left in their file.
    const run = planToSessionRun(built);
    const { session } = await createSession(graphBytes(run.train), { ...trainingSessionOptions({ threads, externalData: run.externalData, extra: TRAIN_EXTRA }), ep: 'cpu' });
    const createMs = now() - t0;
    rssStages.afterSessionCreate = mib();
    const m = built.manifest;
    const h = m.train.inputs.hyperparameters;
    const optimizerFeeds = (t: number) =>
      Object.fromEntries(
        Object.entries(adamWScalarFeeds(h, { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: null }, t)).map(([n, x]) => [n, new ort.Tensor('float32', x, [])]),
      );
    let theta: Map<string, Float32Array> = new Map([...built.params].map(([k, t]) => [k, t.data as Float32Array]));
    const shapes = new Map([...built.params].map(([k, t]) => [k, t.shape]));
    let mState: Map<string, Float32Array> = new Map([...theta].map(([k, v]) => [k, new Float32Array(v.length)]));
    let vState: Map<string, Float32Array> = new Map([...theta].map(([k, v]) => [k, new Float32Array(v.length)]));
    const trainable = [...theta.values()].reduce((sum, v) => sum + v.length, 0);
    const labels = new ort.Tensor('int64', BigInt64Array.from(batch.labels, (v) => BigInt(v)), [BATCH]);
    let stepNo = 0;
    let lastLoss = NaN;
    const step = async (): Promise<number> => {
      stepNo++;
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
        ...feedsFor(),
        [m.labels[0]!.name]: labels,
        ...optimizerFeeds(stepNo),
      };
      for (const [k, d] of theta) {
        feeds[k] = new ort.Tensor('float32', d, shapes.get(k)!);
        feeds[m.train.inputs.moments.m[k]!] = new ort.Tensor('float32', mState.get(k)!, shapes.get(k)!);
        feeds[m.train.inputs.moments.v[k]!] = new ort.Tensor('float32', vState.get(k)!, shapes.get(k)!);
      }
      const s0 = now();
      const out = await session.run(feeds);
      const dt = now() - s0;
      lastLoss = (out[TRAIN_OUTPUTS.loss]!.data as Float32Array)[0]!;
      if (stepNo === 1) rssStages.afterFirstStep = mib();
      theta = new Map([...theta.keys()].map((k) => [k, out[m.train.outputs.params[k]!]!.data as Float32Array]));
      mState = new Map([...theta.keys()].map((k) => [k, out[m.train.outputs.moments.m[k]!]!.data as Float32Array]));
      vState = new Map([...theta.keys()].map((k) => [k, out[m.train.outputs.moments.v[k]!]!.data as Float32Array]));
      return dt;
    };
    const info = () => ({
      method,
      trainableParams: trainable,
      injectMs: Math.round(injectMs),
      rssMiB: rssStages,
      ...(TRAIN_EXTRA ? { extraSessionOptions: TRAIN_EXTRA } : {}),
      buildArtifactsMs: Math.round(buildMs),
      sessionCreateMs: Math.round(createMs),
      forwardNodes,
      trainNodes,
      topOps: Object.fromEntries(Object.entries(nodeCounts).sort((a, b) => b[1] - a[1]).slice(0, 12)),
      lastLoss,
    });
    return { step, info, release: () => session.release() };
  };

  if (job === 'train-run') {
    // The whole `peanut-onnx train <adapted.onnx>` process: build in memory, `runs` steps, one
    // checkpoint (the adapted model and the data were written by the driver: runDir(model)).
    const { train } = await import('../src/node/train.ts');
    const dir = runDir(model);
    const t0 = now();
    const r = await train(join(dir, 'adapted.onnx'), { data: join(dir, 'train.jsonl'), outDir: join(dir, 'run'), task: 'seq-cls', steps: runs, batchSize: BATCH, threads, ep: 'cpu', saveEvery: 0 });
    return { job, model, steps: r.step, wallMs: Math.round(now() - t0), lastLoss: r.lastLoss, peakRssMiB: maxRssMiB() };
  }

  if (job === 'train-peanut' || job === 'train-lora') {
    const trainer = await makeTrainer(job === 'train-peanut' ? 'peanut' : 'lora');
    const times: number[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const dt = await trainer.step();
      if (i >= warmup) times.push(dt);
    }
    await trainer.release();
    return { job, model, ...trainer.info(), step: timing(times), peakRssMiB: maxRssMiB() };
  }

  if (job === 'interleaved') {
    // Frozen forward, PEANuT step and LoRA step, ONNX Runtime's in this process and PyTorch's in
    // the reference's, one call of each per round in a rotating order, so load changes on a
    // shared machine hit all of them alike.
    const { session: fwd } = await createSession(path, { ep: 'cpu', threads });
    const peanut = await makeTrainer('peanut');
    const lora = await makeTrainer('lora');
    const feeds = feedsFor();
    const forwardOnce = async () => {
      const s0 = now();
      await fwd.run(feeds);
      return now() - s0;
    };
    const calls: Array<() => Promise<number>> = [forwardOnce, peanut.step, lora.step];
    let reference: Reference | undefined;
    let referenceInfo: Record<string, unknown> | undefined;
    let logitsMaxAbsDiff: number | undefined;
    if (withTorch) {
      reference = new Reference(model, threads, 'forward,peanut,lora');
      referenceInfo = await reference.ready();
      // Same function: the reference's logits against ONNX Runtime's on the batch.
      const ours = (await fwd.run(feeds)).logits!.data as Float32Array;
      const theirs = ((await reference.send('logits')).logits as number[][]).flat();
      logitsMaxAbsDiff = Number(Math.max(...theirs.map((v, i) => Math.abs(v - ours[i]!))).toPrecision(3));
      for (const cmd of ['forward', 'peanut', 'lora']) {
        calls.push(async () => (await reference!.send(cmd)).ms as number);
      }
    }
    const times: number[][] = calls.map(() => []);
    for (let round = 0; round < warmup + runs; round++) {
      for (let j = 0; j < calls.length; j++) {
        const which = (round + j) % calls.length;
        // A pause before each call: the other runtime's idle threads stop spinning first.
        if (SETTLE_MS) await new Promise((r) => setTimeout(r, SETTLE_MS));
        const dt = await calls[which]!();
        if (round >= warmup) times[which]!.push(dt);
      }
    }
    await fwd.release();
    await peanut.release();
    await lora.release();
    let pytorch: Record<string, unknown> | null = null;
    if (reference) {
      const [tf, tp, tl] = times.slice(3).map(timing) as [Timing, Timing, Timing];
      pytorch = { forward: tf, peanutStep: tp, loraStep: tl, info: referenceInfo, logitsMaxAbsDiff, stats: await reference.send('stats') };
      await reference.close();
    }
    const [f, p, l] = times.slice(0, 3).map(timing) as [Timing, Timing, Timing];
    return {
      job,
      model,
      forward: f,
      peanutStep: p,
      loraStep: l,
      peanut: peanut.info(),
      lora: lora.info(),
      peanutOverForward: Number((p.medianMs / f.medianMs).toFixed(3)),
      loraOverForward: Number((l.medianMs / f.medianMs).toFixed(3)),
      pytorch,
      peakRssMiB: maxRssMiB(),
    };
  }

  // io: copy vs inject vs merge; merged vs original inference.
  const { inject } = await import('../src/adapter/inject.ts');
  const { merge } = await import('../src/adapter/merge.ts');
  const dir = join(WORK, `io-${model}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const copyPath = join(dir, 'copy.onnx');
  const adaptedPath = join(dir, 'adapted.onnx');
  const mergedPath = join(dir, 'merged.onnx');
  const ioRuns = Math.max(3, Math.min(runs, 5));
  copyFileSync(path, copyPath); // warm the page cache
  const copy: number[] = [];
  const inj: number[] = [];
  const mrg: number[] = [];
  const parts = { inject: [] as number[][], merge: [] as number[][] };
  for (let i = 0; i < ioRuns; i++) {
    rmSync(copyPath, { force: true });
    let s = now();
    copyFileSync(path, copyPath);
    const fd = openSync(copyPath, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    copy.push(now() - s);

    s = now();
    const loaded = loadModel(path);
    const s1 = now();
    const adapted = inject(loaded, { method: 'peanut', r: RANK, depth: 0, targets: TARGETS, seed: i }).model;
    const s2 = now();
    saveModel(adapted, adaptedPath);
    const s3 = now();
    inj.push(s3 - s);
    parts.inject.push([s1 - s, s2 - s1, s3 - s2]);

    s = now();
    const loadedAdapted = loadModel(adaptedPath);
    const m1 = now();
    const merged = merge(loadedAdapted, { safe: true, stream: true });
    const m2 = now();
    saveModel(merged, mergedPath);
    const m3 = now();
    mrg.push(m3 - s);
    parts.merge.push([m1 - s, m2 - m1, m3 - m2]);
  }
  const split = (xs: number[][]) => ({ loadMs: timing(xs.map((x) => x[0]!)).medianMs, workMs: timing(xs.map((x) => x[1]!)).medianMs, saveMs: timing(xs.map((x) => x[2]!)).medianMs });
  const sizeMiB = Number((statSync(path).size / 2 ** 20).toFixed(1));

  // merged vs original inference, alternating calls on the same batch
  const { session: so } = await createSession(path, { ep: 'cpu', threads });
  const { session: sm } = await createSession(mergedPath, { ep: 'cpu', threads });
  const feeds = feedsFor();
  for (let i = 0; i < warmup; i++) {
    await so.run(feeds);
    await sm.run(feeds);
  }
  const to: number[] = [];
  const tm: number[] = [];
  // Twice the runs: the two graphs are identical, so the ratio is pure noise unless measured well.
  for (let i = 0; i < 2 * runs; i++) {
    const order = i % 2 ? ([[sm, tm], [so, to]] as const) : ([[so, to], [sm, tm]] as const);
    for (const [s, into] of order) {
      const t = now();
      await s.run(feeds);
      into.push(now() - t);
    }
  }
  await so.release();
  await sm.release();
  rmSync(dir, { recursive: true, force: true });
  const original = timing(to);
  const merged = timing(tm);
  return {
    job,
    model,
    fileMiB: sizeMiB,
    copy: timing(copy),
    inject: { ...timing(inj), ...split(parts.inject) },
    merge: { ...timing(mrg), ...split(parts.merge) },
    inference: { original, merged, ratio: Number((merged.medianMs / original.medianMs).toFixed(3)) },
    peakRssMiB: maxRssMiB(),
  };
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

interface Args {
  models: ModelKey[];
  runs?: number;
  threads: number;
  out: string;
  pytorch: boolean;
  waitLoad?: number;
  table?: string;
}

const USAGE = 'usage: npx tsx tools/bench.ts [--models tiny,base] [--runs N] [--threads T] [--out bench/results.json] [--no-pytorch] [--wait-load L] | --table [results.json]';

function parseArgs(argv: string[]): Args {
  const a: Args = { models: ['tiny', 'base'], threads: 2, out: join(ROOT, 'bench', 'results.json'), pytorch: true };
  const num = (k: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      console.error(`${k}: expected a number ≥ ${min}, got '${v ?? ''}'`);
      process.exit(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--models') a.models = (argv[++i] ?? '').split(',') as ModelKey[];
    else if (k === '--runs') a.runs = Math.round(num(k, argv[++i], 1));
    else if (k === '--threads') a.threads = Math.round(num(k, argv[++i], 1));
    else if (k === '--out') a.out = resolve(argv[++i] ?? '');
    else if (k === '--no-pytorch') a.pytorch = false;
    else if (k === '--wait-load') a.waitLoad = num(k, argv[++i], 0);
    else if (k === '--table') a.table = argv[i + 1] && !argv[i + 1]!.startsWith('-') ? resolve(argv[++i]!) : a.out;
    else if (k === '--help' || k === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown argument '${k}'; ${USAGE}`);
      process.exit(2);
    }
  }
  for (const m of a.models) {
    if (m !== 'tiny' && m !== 'base') {
      console.error(`--models: unknown model '${m}'; valid: tiny, base`);
      process.exit(2);
    }
  }
  return a;
}

const loadNow = () => loadavg().map((l) => Number(l.toFixed(2)));

function runWorker(job: Job, model: ModelKey, runs: number, warmup: number, threads: number, withTorch = false): Record<string, unknown> {
  const t0 = performance.now();
  const loadAtStart = loadNow();
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', job, model, String(runs), String(warmup), String(threads), withTorch ? 'torch' : 'no-torch'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = (r.stdout ?? '').trim().split('\n');
  if (r.status !== 0) throw new Error(`bench job ${job}/${model} failed (exit ${r.status}):\n${(r.stderr ?? '').split('\n').filter((l) => !/providers_shared|^\s*$|\[m$/.test(l)).slice(-15).join('\n')}`);
  const res = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  res.wallS = Number(((performance.now() - t0) / 1000).toFixed(1));
  res.loadavg = { start: loadAtStart, end: loadNow() };
  process.stderr.write(`  ${job} ${model}: done in ${res.wallS} s (load ${loadAtStart[0]} → ${loadNow()[0]})\n`);
  return res;
}

/** One PyTorch job alone in its own process (its peak memory): `steps` calls, then its stats. */
function runReferenceJob(model: ModelKey, job: 'forward' | 'peanut' | 'lora', steps: number, threads: number): Record<string, unknown> {
  const t0 = performance.now();
  const r = spawnSync(PYTHON, referenceArgs(model, threads, job), {
    cwd: ROOT,
    encoding: 'utf8',
    input: `${`${job}\n`.repeat(steps)}stats\nquit\n`,
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`PyTorch reference job ${job}/${model} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').at(-1) ?? ''}`);
  const replies = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const ready = replies[0]!;
  const ms = replies.filter((x) => x.job === job).map((x) => x.ms as number);
  const stats = replies.find((x) => 'peakRssMiB' in x)!;
  const wallS = Number(((performance.now() - t0) / 1000).toFixed(1));
  process.stderr.write(`  pytorch ${job} ${model}: done in ${wallS} s\n`);
  return { job: `pytorch-${job}`, model, steps, times: ms.map((v) => Number(v.toFixed(1))), rssAfterLoadMiB: ready.rssAfterLoadMiB, peakRssMiB: stats.peakRssMiB, wallS };
}

/** Whether the reference can run: torch and onnx importable by PYTHON. */
function probePytorch(): { available: true; python: string; torch: string; onnx: string } | { available: false; reason: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch, onnx, numpy; print(torch.__version__, onnx.__version__)'], { encoding: 'utf8' });
  if (r.error) return { available: false, reason: `${PYTHON} cannot be run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})` };
  if (r.status !== 0) return { available: false, reason: `${PYTHON} cannot import torch and onnx (${(r.stderr ?? '').trim().split('\n').at(-1)}); install Debian's python3-torch and python3-onnx` };
  const [torch, onnx] = r.stdout.trim().split(' ') as [string, string];
  return { available: true, python: PYTHON, torch, onnx };
}

async function waitForLoad(limit: number): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  while (loadavg()[0]! > limit && Date.now() < deadline) {
    process.stderr.write(`  load average ${loadNow()[0]} > ${limit}; waiting\n`);
    await new Promise((r) => setTimeout(r, 15_000));
  }
}

const r3 = (v: number) => Number(v.toFixed(3));

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.table) {
    const md = markdown(JSON.parse(readFileSync(args.table, 'utf8')) as Report);
    process.stdout.write(md);
    return;
  }
  const started = performance.now();
  mkdirSync(WORK, { recursive: true });
  if (args.waitLoad !== undefined) await waitForLoad(args.waitLoad);
  const { nodeRuntime } = await import('../src/node/onnxruntime.ts');
  const torch = args.pytorch ? probePytorch() : ({ available: false, reason: '--no-pytorch' } as const);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    kernel: `${process.platform} ${release()}`,
    node: process.version,
    onnxruntime: nodeRuntime.label,
    torch: torch.available ? `torch ${torch.torch} (${torch.python}), onnx ${torch.onnx}` : null,
    threads: args.threads,
    loadavgAtStart: loadNow(),
  };
  process.stderr.write(`bench on ${machine.cpus} × ${machine.cpuModel}, ${machine.onnxruntime}, ${args.threads} threads, load average ${machine.loadavgAtStart.join(' ')}\n`);
  process.stderr.write(torch.available ? `  PyTorch reference: ${machine.torch}\n` : `  PyTorch reference not run: ${torch.reason}; its cells stay empty\n`);
  if (args.models.includes('base')) {
    const { buildBertBase } = await import('./lib/bert.ts');
    const { saveModel } = await import('../src/node/model-files.ts');
    const t0 = performance.now();
    saveModel(buildBertBase(), BASE);
    process.stderr.write(`  wrote ${BASE} (bert-base-sized, seed 1101, opset 14) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }

  const results: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const model of args.models) {
    const runs = args.runs ?? (model === 'tiny' ? 30 : 6);
    const warmup = model === 'tiny' ? 5 : 1;
    results[model] = {};
    writeBatchFile(model);
    // Timing: all interleaved in one process (+ the reference's). Peak memory: each job alone.
    results[model]!.interleaved = runWorker('interleaved', model, runs, warmup, args.threads, torch.available);
    const rssRuns = model === 'tiny' ? runs : 2;
    for (const job of ['forward', 'train-peanut', 'train-lora'] as const) results[model]![job] = runWorker(job, model, rssRuns, warmup, args.threads);
    const runSteps = model === 'tiny' ? 20 : 4;
    await prepareTrainRun(model, runSteps);
    results[model]!['train-run'] = runWorker('train-run', model, runSteps, 0, args.threads);
    rmSync(runDir(model), { recursive: true, force: true });
    if (torch.available) {
      for (const job of ['forward', 'peanut', 'lora'] as const) results[model]![`pytorch-${job}`] = runReferenceJob(model, job, warmup + rssRuns, args.threads);
    }
    results[model]!.io = runWorker('io', model, runs, warmup, args.threads);
  }

  // ---- summary ------------------------------------------------------------------------------
  const rows: SummaryRow[] = [];
  const get = <T>(model: string, job: string, ...path: string[]): T => path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], results[model]![job]) as T;
  for (const model of args.models) {
    const fwd = get<number>(model, 'interleaved', 'forward', 'medianMs');
    const pea = get<number>(model, 'interleaved', 'peanutStep', 'medianMs');
    const lora = get<number>(model, 'interleaved', 'loraStep', 'medianMs');
    // Best of the runs: on a shared machine contention only ever adds time.
    const fwdMin = get<number>(model, 'interleaved', 'forward', 'minMs');
    const peaMin = get<number>(model, 'interleaved', 'peanutStep', 'minMs');
    const loraMin = get<number>(model, 'interleaved', 'loraStep', 'minMs');
    const rss = {
      forward: get<number>(model, 'forward', 'peakRssMiB'),
      peanut: get<number>(model, 'train-peanut', 'peakRssMiB'),
      lora: get<number>(model, 'train-lora', 'peakRssMiB'),
      trainRun: get<number>(model, 'train-run', 'peakRssMiB'),
      io: get<number>(model, 'io', 'peakRssMiB'),
    };
    const pt = get<Record<string, unknown> | null>(model, 'interleaved', 'pytorch');
    let pytorch: PytorchCells;
    if (pt) {
      const t = (k: string, s: 'medianMs' | 'minMs') => (pt[k] as Timing)[s];
      const ptRss = { forward: get<number>(model, 'pytorch-forward', 'peakRssMiB'), peanut: get<number>(model, 'pytorch-peanut', 'peakRssMiB'), lora: get<number>(model, 'pytorch-lora', 'peakRssMiB') };
      pytorch = {
        available: true,
        version: machine.torch,
        frozenForwardMs: t('forward', 'medianMs'),
        peanutStepMs: t('peanutStep', 'medianMs'),
        loraStepMs: t('loraStep', 'medianMs'),
        min: { frozenForwardMs: t('forward', 'minMs'), peanutStepMs: t('peanutStep', 'minMs'), loraStepMs: t('loraStep', 'minMs') },
        peakRssMiB: ptRss,
        peanutStepOverPytorch: r3(pea / t('peanutStep', 'medianMs')),
        loraStepOverPytorch: r3(lora / t('loraStep', 'medianMs')),
        forwardOverPytorch: r3(fwd / t('forward', 'medianMs')),
        minPeanutStepOverPytorch: r3(peaMin / t('peanutStep', 'minMs')),
        minLoraStepOverPytorch: r3(loraMin / t('loraStep', 'minMs')),
        minForwardOverPytorch: r3(fwdMin / t('forward', 'minMs')),
        pytorchPeanutStepOverForward: r3(t('peanutStep', 'medianMs') / t('forward', 'medianMs')),
        rssOverPytorch: { forward: r3(rss.forward / ptRss.forward), peanut: r3(rss.peanut / ptRss.peanut), lora: r3(rss.lora / ptRss.lora), trainRun: r3(rss.trainRun / ptRss.peanut) },
        logitsMaxAbsDiff: pt.logitsMaxAbsDiff as number,
      };
    } else {
      pytorch = {
        available: false,
        reason: torch.available ? 'not run' : torch.reason,
        version: null,
        frozenForwardMs: null,
        peanutStepMs: null,
        loraStepMs: null,
        min: { frozenForwardMs: null, peanutStepMs: null, loraStepMs: null },
        peakRssMiB: { forward: null, peanut: null, lora: null },
        peanutStepOverPytorch: null,
        loraStepOverPytorch: null,
        forwardOverPytorch: null,
        minPeanutStepOverPytorch: null,
        minLoraStepOverPytorch: null,
        minForwardOverPytorch: null,
        pytorchPeanutStepOverForward: null,
        rssOverPytorch: { forward: null, peanut: null, lora: null, trainRun: null },
        logitsMaxAbsDiff: null,
      };
    }
    rows.push({
      model,
      frozenForwardMs: fwd,
      peanutStepMs: pea,
      loraStepMs: lora,
      peanutStepOverForward: r3(pea / fwd),
      loraStepOverForward: r3(lora / fwd),
      peanutOverLora: r3(pea / lora),
      min: { frozenForwardMs: fwdMin, peanutStepMs: peaMin, loraStepMs: loraMin, peanutStepOverForward: r3(peaMin / fwdMin), loraStepOverForward: r3(loraMin / fwdMin) },
      peakRssMiB: rss,
      mergedOverOriginalInference: get<number>(model, 'io', 'inference', 'ratio'),
      injectOverCopy: Number((get<number>(model, 'io', 'inject', 'medianMs') / get<number>(model, 'io', 'copy', 'medianMs')).toFixed(2)),
      mergeOverCopy: Number((get<number>(model, 'io', 'merge', 'medianMs') / get<number>(model, 'io', 'copy', 'medianMs')).toFixed(2)),
      pytorch,
    });
  }
  const report: Report = {
    generated: new Date().toISOString(),
    command: `npx tsx tools/bench.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    setup: {
      timing: 'forward, PEANuT step and LoRA step of ONNX Runtime and of the PyTorch reference interleaved round by round (rotating order); peak RSS from one process per job',
      batch: BATCH,
      seq: SEQ,
      rank: RANK,
      targets: TARGETS,
      peanutDepth: 0,
      loraAlpha: 2 * RANK,
      threads: args.threads,
      ep: 'cpu',
      stat: 'median (and best) after warm-up',
      trainSession: 'as peanut-onnx train: graphOptimizationLevel all, memory pattern off',
      pytorch: torch.available
        ? `tools/pytorch-reference.py: the same export's initializers in a plain PyTorch BERT (nn.Linear layout), ${args.threads} threads, forward under no_grad, steps = forward + cross-entropy + backward + AdamW on θ (PEANuT: W0 + B·relu(A·W0); LoRA as PEFT: base + (alpha/r)·B(A x))`
        : `not run: ${torch.reason}`,
    },
    machine: { ...machine, loadavgAtEnd: loadNow() },
    summary: rows,
    results,
    totalS: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  const md = markdown(report);
  const mdPath = join(dirname(args.out), 'README-benchmarks.md');
  writeFileSync(mdPath, md);
  process.stdout.write(`${md}\nwrote ${args.out} and ${mdPath} (${report.totalS} s; load average ${report.machine.loadavgAtEnd.join(' ')})\n`);
}

// ---------------------------------------------------------------------------------------------
// Report and its markdown table
// ---------------------------------------------------------------------------------------------

type Cell = number | null;

interface PytorchCells {
  available: boolean;
  reason?: string;
  version: string | null;
  frozenForwardMs: Cell;
  peanutStepMs: Cell;
  loraStepMs: Cell;
  min: { frozenForwardMs: Cell; peanutStepMs: Cell; loraStepMs: Cell };
  peakRssMiB: { forward: Cell; peanut: Cell; lora: Cell };
  peanutStepOverPytorch: Cell;
  loraStepOverPytorch: Cell;
  forwardOverPytorch: Cell;
  minPeanutStepOverPytorch: Cell;
  minLoraStepOverPytorch: Cell;
  minForwardOverPytorch: Cell;
  pytorchPeanutStepOverForward: Cell;
  rssOverPytorch: { forward: Cell; peanut: Cell; lora: Cell; trainRun: Cell };
  logitsMaxAbsDiff: Cell;
}

interface SummaryRow {
  model: string;
  frozenForwardMs: number;
  peanutStepMs: number;
  loraStepMs: number;
  peanutStepOverForward: number;
  loraStepOverForward: number;
  peanutOverLora: number;
  min: { frozenForwardMs: number; peanutStepMs: number; loraStepMs: number; peanutStepOverForward: number; loraStepOverForward: number };
  peakRssMiB: { forward: number; peanut: number; lora: number; trainRun: number; io: number };
  mergedOverOriginalInference: number;
  injectOverCopy: number;
  mergeOverCopy: number;
  pytorch: PytorchCells;
}

interface Report {
  generated: string;
  command: string;
  setup: Record<string, unknown>;
  machine: { cpus: number; cpuModel: string; memGiB: number; kernel: string; node: string; onnxruntime: string; torch: string | null; threads: number; loadavgAtStart: number[]; loadavgAtEnd: number[] };
  summary: SummaryRow[];
  results: Record<string, Record<string, Record<string, unknown>>>;
  totalS: number;
}

const fmtMs = (ms: Cell) => (ms === null ? '—' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`);
const x = (r: Cell) => (r === null ? '—' : `${r.toFixed(2)}×`);
const mib = (v: Cell) => (v === null ? '—' : `${Math.round(v).toLocaleString('en-US')}`);

/** The summary of a results file as a markdown table (README pastes it). */
export function markdown(report: Report): string {
  const names: Record<string, string> = { tiny: 'bert-tiny (demo)', base: 'bert-base-sized' };
  const rows = report.summary;
  const lines = [`| ${['', ...rows.map((r) => names[r.model] ?? r.model)].join(' | ')} |`, `|${[' --- ', ...rows.map(() => ' ---: ')].join('|')}|`];
  const row = (label: string, f: (r: SummaryRow) => string) => lines.push(`| ${[label, ...rows.map(f)].join(' | ')} |`);
  const both = (a: string, b: string) => `${a} · ${b}`;
  row('frozen forward (8×128), median · best', (r) => both(fmtMs(r.frozenForwardMs), fmtMs(r.min.frozenForwardMs)));
  row('PEANuT training step, median · best', (r) => both(fmtMs(r.peanutStepMs), fmtMs(r.min.peanutStepMs)));
  row('LoRA training step, median · best', (r) => both(fmtMs(r.loraStepMs), fmtMs(r.min.loraStepMs)));
  row('PEANuT step / forward, median · best', (r) => both(x(r.peanutStepOverForward), x(r.min.peanutStepOverForward)));
  row('LoRA step / forward, median · best', (r) => both(x(r.loraStepOverForward), x(r.min.loraStepOverForward)));
  row('PEANuT step / LoRA step', (r) => x(r.peanutOverLora));
  row('PyTorch frozen forward, median · best', (r) => both(fmtMs(r.pytorch.frozenForwardMs), fmtMs(r.pytorch.min.frozenForwardMs)));
  row('PyTorch PEANuT step, median · best', (r) => both(fmtMs(r.pytorch.peanutStepMs), fmtMs(r.pytorch.min.peanutStepMs)));
  row('PyTorch LoRA step, median · best', (r) => both(fmtMs(r.pytorch.loraStepMs), fmtMs(r.pytorch.min.loraStepMs)));
  row('**PEANuT step / PyTorch’s**, median · best', (r) => both(x(r.pytorch.peanutStepOverPytorch), x(r.pytorch.minPeanutStepOverPytorch)));
  row('LoRA step / PyTorch’s, median · best', (r) => both(x(r.pytorch.loraStepOverPytorch), x(r.pytorch.minLoraStepOverPytorch)));
  row('frozen forward / PyTorch’s, median · best', (r) => both(x(r.pytorch.forwardOverPytorch), x(r.pytorch.minForwardOverPytorch)));
  row('peak RSS MiB: forward / PEANuT / LoRA', (r) => `${mib(r.peakRssMiB.forward)} / ${mib(r.peakRssMiB.peanut)} / ${mib(r.peakRssMiB.lora)}`);
  row('PyTorch peak RSS MiB: forward / PEANuT / LoRA', (r) => `${mib(r.pytorch.peakRssMiB.forward)} / ${mib(r.pytorch.peakRssMiB.peanut)} / ${mib(r.pytorch.peakRssMiB.lora)}`);
  row('**peak RSS / PyTorch’s**: forward / PEANuT / LoRA', (r) => `${x(r.pytorch.rssOverPytorch.forward)} / ${x(r.pytorch.rssOverPytorch.peanut)} / ${x(r.pytorch.rssOverPytorch.lora)}`);
  row('peak RSS MiB of a `peanut-onnx train` run (PEANuT) · / PyTorch’s PEANuT step', (r) => `${mib(r.peakRssMiB.trainRun)} · ${x(r.pytorch.rssOverPytorch.trainRun)}`);
  row('merged / original inference time', (r) => x(r.mergedOverOriginalInference));
  row('inject / plain copy + fsync', (r) => x(r.injectOverCopy));
  row('merge / plain copy + fsync', (r) => x(r.mergeOverCopy));
  const m = report.machine;
  const pt = rows.find((r) => r.pytorch.available);
  const notes = [
    '',
    `One run of \`${report.command}\` (${report.generated.slice(0, 16).replace('T', ' ')} UTC, ${report.totalS} s): ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, ${m.kernel}; Node ${m.node}, ${m.onnxruntime}; ${m.torch ?? 'PyTorch not available'}; ${m.threads} threads for both; load average ${m.loadavgAtStart.join(' ')} at the start, ${m.loadavgAtEnd.join(' ')} at the end.`,
    `Batch ${report.setup.batch} × ${report.setup.seq}, rank ${report.setup.rank} on ${report.setup.targets}, PEANuT depth ${report.setup.peanutDepth}, LoRA alpha ${report.setup.loraAlpha}; times interleaved round by round in one run; peak RSS of each job in its own process.`,
    pt
      ? `PyTorch: ${report.setup.pytorch}; its logits match ONNX Runtime's within ${rows.map((r) => `${r.pytorch.logitsMaxAbsDiff} (${r.model})`).join(', ')}.`
      : `PyTorch cells are empty: ${rows[0]?.pytorch.reason ?? 'not run'}.`,
    '',
  ];
  return `${[...lines, ...notes].join('\n')}`;
}

const argv = process.argv.slice(2);
if (argv[0] === '--worker') {
  const res = await worker(argv[1] as Job, argv[2] as ModelKey, Number(argv[3]), Number(argv[4]), Number(argv[5]), argv[6] === 'torch');
  process.stdout.write(`\n${JSON.stringify(res)}\n`);
} else {
  await main();
}
