/**
 * `npm run bench`: what PEANuT costs, measured side by side in one run on one machine.
 *
 *   npx tsx tools/bench.ts [--models tiny,base] [--runs N] [--out bench/results.json]
 *
 * For the shipped demo model (graphs/bert-tiny.onnx) and a bert-base-sized export generated on
 * the fly (tools/lib buildBertBase, written to bench/work/, never committed), on one batch of
 * 8 × 128 tokens, PEANuT and LoRA at rank 8 on query,value (PEANuT depth 0):
 *
 *  - frozen forward: the original model, one inference call;
 *  - training step: one run of the fused train graph (forward + loss + backward + AdamW), built
 *    and run exactly as `peanut-onnx train` does, θ and moments fed back each step;
 *    forward, PEANuT step and LoRA step are timed interleaved in one process (one call of each
 *    per round, rotating order), so load changes on a shared machine affect all three alike;
 *  - merged vs original inference time (same batch, calls alternated);
 *  - inject (load + inject + save) and merge (load + merge + save, streaming, as the CLI runs
 *    them) vs a plain copy of the file; every output is fsynced before its rename, so the copy
 *    is timed with its fsync too;
 *  - peak resident memory of each job (each job runs in its own process, so its peak is its own).
 *
 * Times are medians over several runs after warm-up. Ratios come from the same run on the same
 * machine; the PyTorch reference (PyTorch 1.13, OpenBLAS, 2 threads, measured on this machine type)
 * is quoted for comparison, not re-measured.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work');
const TINY = join(ROOT, 'graphs', 'bert-tiny.onnx');
const BASE = join(WORK, 'bert-base.onnx');

/** PyTorch reference on this machine type for bert-base, batch 8 × 128, r 8, query+value. */
export const PYTORCH_REFERENCE = { peanutStepS: 3.86, frozenForwardS: 1.64, loraStepS: 3.33, setup: 'PyTorch 1.13, OpenBLAS, 2 threads' } as const;

const BATCH = 8;
const SEQ = 128;
const RANK = 8;
const TARGETS = 'query,value';

type ModelKey = 'tiny' | 'base';
type Job = 'forward' | 'train-peanut' | 'train-lora' | 'interleaved' | 'io';

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

async function worker(job: Job, model: ModelKey, runs: number, warmup: number): Promise<Record<string, unknown>> {
  const { ort, createSession } = await import('../src/node/onnxruntime.ts');
  const { encodeModel, graphOf } = await import('../src/onnx/model.ts');
      const { loadModel, saveModel } = await import('../src/node/model-files.ts');
  const path = model === 'tiny' ? TINY : BASE;
  const vocab = model === 'tiny' ? 128 : 30522;

  // One fixed batch: seeded token ids, full attention, labels alternating.
  const { Random } = await import('../src/util/random.ts');
  const rng = new Random(1234);
  const ids = BigInt64Array.from({ length: BATCH * SEQ }, (_, i) => BigInt(i % SEQ === 0 ? 1 : 4 + rng.int(vocab - 4)));
  const feedsFor = () => ({
    input_ids: new ort.Tensor('int64', ids, [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ).fill(1n), [BATCH, SEQ]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ), [BATCH, SEQ]),
  });
  const now = () => performance.now();

  if (job === 'forward') {
    const t0 = now();
    const { session } = await createSession(path, { ep: 'cpu' });
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
    const { buildTrainingPlan } = await import('../src/train/plan.ts');
    const { nodeRuntime } = await import('../src/node/onnxruntime.ts');
    const { TRAIN_OUTPUTS } = await import('../src/train/training-graph.ts');
    const { adamWScalarFeeds } = await import('../src/train/adamw.ts');
    let t0 = now();
    const base = loadModel(path);
    const adapted = inject(base, { method, r: RANK, depth: 0, alpha: 2 * RANK, targets: TARGETS, seed: 0 }).model;
    const injectMs = now() - t0;
    t0 = now();
    const built = await buildTrainingPlan(nodeRuntime, adapted, { task: 'seq-cls' });
    const buildMs = now() - t0;
    const trainProto = built.graphs.train;
    const nodeCounts: Record<string, number> = {};
    for (const n of graphOf({ proto: trainProto, baseDir: adapted.baseDir }).node) nodeCounts[n.opType] = (nodeCounts[n.opType] ?? 0) + 1;
    const trainNodes = trainProto.graph!.node.length;
    const forwardNodes = graphOf(base).node.length;
    t0 = now();
    const { session } = await createSession(encodeModel(trainProto), { ep: 'cpu', memPattern: false, graphOptimizationLevel: 'all' });
    const createMs = now() - t0;
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
    const labels = new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(i % 2)), [BATCH]);
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
      theta = new Map([...theta.keys()].map((k) => [k, out[m.train.outputs.params[k]!]!.data as Float32Array]));
      mState = new Map([...theta.keys()].map((k) => [k, out[m.train.outputs.moments.m[k]!]!.data as Float32Array]));
      vState = new Map([...theta.keys()].map((k) => [k, out[m.train.outputs.moments.v[k]!]!.data as Float32Array]));
      return dt;
    };
    const info = () => ({
      method,
      trainableParams: trainable,
      injectMs: Math.round(injectMs),
      buildArtifactsMs: Math.round(buildMs),
      sessionCreateMs: Math.round(createMs),
      forwardNodes,
      trainNodes,
      topOps: Object.fromEntries(Object.entries(nodeCounts).sort((a, b) => b[1] - a[1]).slice(0, 12)),
      lastLoss,
    });
    return { step, info, release: () => session.release() };
  };

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
    // Frozen forward, PEANuT step and LoRA step in one process, one call of each per round in a
    // rotating order, so load changes on a shared machine hit all three alike.
    const { session: fwd } = await createSession(path, { ep: 'cpu' });
    const peanut = await makeTrainer('peanut');
    const lora = await makeTrainer('lora');
    const feeds = feedsFor();
    const forwardOnce = async () => {
      const s0 = now();
      await fwd.run(feeds);
      return now() - s0;
    };
    const calls = [forwardOnce, peanut.step, lora.step];
    const times: number[][] = [[], [], []];
    for (let round = 0; round < warmup + runs; round++) {
      for (let j = 0; j < 3; j++) {
        const which = (round + j) % 3;
        const dt = await calls[which]!();
        if (round >= warmup) times[which]!.push(dt);
      }
    }
    await fwd.release();
    await peanut.release();
    await lora.release();
    const [f, p, l] = times.map(timing) as [Timing, Timing, Timing];
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
  const { session: so } = await createSession(path, { ep: 'cpu' });
  const { session: sm } = await createSession(mergedPath, { ep: 'cpu' });
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
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { models: ['tiny', 'base'], out: join(ROOT, 'bench', 'results.json') };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--models') a.models = argv[++i]!.split(',') as ModelKey[];
    else if (k === '--runs') a.runs = Number(argv[++i]);
    else if (k === '--out') a.out = resolve(argv[++i]!);
    else if (k === '--help' || k === '-h') {
      console.log('usage: npx tsx tools/bench.ts [--models tiny,base] [--runs N] [--out bench/results.json]');
      process.exit(0);
    } else {
      console.error(`unknown argument '${k}'; usage: npx tsx tools/bench.ts [--models tiny,base] [--runs N] [--out file]`);
      process.exit(2);
    }
  }
  for (const m of a.models) if (m !== 'tiny' && m !== 'base') throw new RangeError(`--models: unknown model '${m}'; valid: tiny, base`);
  return a;
}

function runWorker(job: Job, model: ModelKey, runs: number, warmup: number): Record<string, unknown> {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', job, model, String(runs), String(warmup)], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = (r.stdout ?? '').trim().split('\n');
  if (r.status !== 0) throw new Error(`bench job ${job}/${model} failed (exit ${r.status}):\n${(r.stderr ?? '').split('\n').filter((l) => !/providers_shared|^\s*$|\[m$/.test(l)).slice(-15).join('\n')}`);
  const res = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  res.wallS = Number(((performance.now() - t0) / 1000).toFixed(1));
  process.stderr.write(`  ${job} ${model}: done in ${res.wallS} s\n`);
  return res;
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`);
const x = (r: number) => `${r.toFixed(2)}×`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  mkdirSync(WORK, { recursive: true });
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memGiB: Number((totalmem() / 2 ** 30).toFixed(1)), loadavgAtStart: loadavg().map((l) => Number(l.toFixed(2))), node: process.version };
  process.stderr.write(`bench on ${machine.cpus} × ${machine.cpuModel}, load average ${machine.loadavgAtStart.join(' ')}\n`);
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
    // Timing: the three interleaved in one process. Peak memory: each alone in its own process.
    results[model]!.interleaved = runWorker('interleaved', model, runs, warmup);
    const rssRuns = model === 'tiny' ? runs : 2;
    for (const job of ['forward', 'train-peanut', 'train-lora'] as const) results[model]![job] = runWorker(job, model, rssRuns, warmup);
    results[model]!.io = runWorker('io', model, runs, warmup);
  }

  // ---- summary ------------------------------------------------------------------------------
  type Row = Record<string, unknown> & { model: string };
  const rows: Row[] = [];
  const get = <T>(model: string, job: string, ...path: string[]): T => path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], results[model]![job]) as T;
  for (const model of args.models) {
    const fwd = get<number>(model, 'interleaved', 'forward', 'medianMs');
    const pea = get<number>(model, 'interleaved', 'peanutStep', 'medianMs');
    const lora = get<number>(model, 'interleaved', 'loraStep', 'medianMs');
    // Best of the runs: on a shared machine contention only ever adds time.
    const fwdMin = get<number>(model, 'interleaved', 'forward', 'minMs');
    const peaMin = get<number>(model, 'interleaved', 'peanutStep', 'minMs');
    const loraMin = get<number>(model, 'interleaved', 'loraStep', 'minMs');
    rows.push({
      model,
      frozenForwardMs: fwd,
      peanutStepMs: pea,
      loraStepMs: lora,
      peanutStepOverForward: Number((pea / fwd).toFixed(3)),
      loraStepOverForward: Number((lora / fwd).toFixed(3)),
      peanutOverLora: Number((pea / lora).toFixed(3)),
      min: { frozenForwardMs: fwdMin, peanutStepMs: peaMin, loraStepMs: loraMin, peanutStepOverForward: Number((peaMin / fwdMin).toFixed(3)), loraStepOverForward: Number((loraMin / fwdMin).toFixed(3)) },
      peakRssMiB: { forward: get(model, 'forward', 'peakRssMiB'), peanut: get(model, 'train-peanut', 'peakRssMiB'), lora: get(model, 'train-lora', 'peakRssMiB'), io: get(model, 'io', 'peakRssMiB') },
      mergedOverOriginalInference: get<number>(model, 'io', 'inference', 'ratio'),
      injectOverCopy: Number((get<number>(model, 'io', 'inject', 'medianMs') / get<number>(model, 'io', 'copy', 'medianMs')).toFixed(2)),
      mergeOverCopy: Number((get<number>(model, 'io', 'merge', 'medianMs') / get<number>(model, 'io', 'copy', 'medianMs')).toFixed(2)),
      ...(model === 'base'
        ? {
            pytorch: {
              ...PYTORCH_REFERENCE,
              peanutStepOverPytorch: Number((pea / 1000 / PYTORCH_REFERENCE.peanutStepS).toFixed(3)),
              loraStepOverPytorch: Number((lora / 1000 / PYTORCH_REFERENCE.loraStepS).toFixed(3)),
              forwardOverPytorch: Number((fwd / 1000 / PYTORCH_REFERENCE.frozenForwardS).toFixed(3)),
              minPeanutStepOverPytorch: Number((peaMin / 1000 / PYTORCH_REFERENCE.peanutStepS).toFixed(3)),
              minLoraStepOverPytorch: Number((loraMin / 1000 / PYTORCH_REFERENCE.loraStepS).toFixed(3)),
              minForwardOverPytorch: Number((fwdMin / 1000 / PYTORCH_REFERENCE.frozenForwardS).toFixed(3)),
            },
          }
        : {}),
    });
  }
  const report = {
    generated: new Date().toISOString(),
    command: `npx tsx tools/bench.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    setup: { timing: 'forward, PEANuT step and LoRA step interleaved in one process; peak RSS from one process per job', batch: BATCH, seq: SEQ, rank: RANK, targets: TARGETS, peanutDepth: 0, loraAlpha: 2 * RANK, ep: 'cpu', stat: 'median after warm-up', trainSession: 'as peanut-onnx train: graphOptimizationLevel all, memory pattern off' },
    machine: { ...machine, loadavgAtEnd: loadavg().map((l) => Number(l.toFixed(2))) },
    summary: rows,
    results,
    totalS: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);

  // ---- table ----------------------------------------------------------------------------------
  const names: Record<string, string> = { tiny: 'bert-tiny (demo)', base: 'bert-base-sized' };
  const lines = [
    `| ${['', ...args.models.map((m) => names[m])].join(' | ')} |`,
    `|${[' --- ', ...args.models.map(() => ' ---: ')].join('|')}|`,
  ];
  const row = (label: string, f: (r: Row) => string) => lines.push(`| ${[label, ...rows.map(f)].join(' | ')} |`);
  const mn = (r: Row) => r.min as Record<string, number>;
  row('frozen forward (8×128), median · best', (r) => `${fmtMs(r.frozenForwardMs as number)} · ${fmtMs(mn(r).frozenForwardMs!)}`);
  row('PEANuT training step, median · best', (r) => `${fmtMs(r.peanutStepMs as number)} · ${fmtMs(mn(r).peanutStepMs!)}`);
  row('LoRA training step, median · best', (r) => `${fmtMs(r.loraStepMs as number)} · ${fmtMs(mn(r).loraStepMs!)}`);
  row('PEANuT step / forward, median · best', (r) => `${x(r.peanutStepOverForward as number)} · ${x(mn(r).peanutStepOverForward!)}`);
  row('LoRA step / forward, median · best', (r) => `${x(r.loraStepOverForward as number)} · ${x(mn(r).loraStepOverForward!)}`);
  row('PEANuT step / LoRA step', (r) => x(r.peanutOverLora as number));
  row('peak RSS: forward / PEANuT / LoRA', (r) => {
    const p = r.peakRssMiB as Record<string, number>;
    return `${p.forward} / ${p.peanut} / ${p.lora} MiB`;
  });
  row('merged / original inference time', (r) => x(r.mergedOverOriginalInference as number));
  row('inject / plain copy', (r) => x(r.injectOverCopy as number));
  row('merge / plain copy', (r) => x(r.mergeOverCopy as number));
  if (args.models.includes('base')) {
    const p = rows.find((r) => r.model === 'base')!.pytorch as Record<string, number>;
    lines.push('');
    lines.push(`PyTorch reference (bert-base, ${PYTORCH_REFERENCE.setup}): PEANuT step ${PYTORCH_REFERENCE.peanutStepS} s, LoRA step ${PYTORCH_REFERENCE.loraStepS} s, frozen forward ${PYTORCH_REFERENCE.frozenForwardS} s.`);
    lines.push('');
    lines.push(`peanut-onnx / PyTorch, median · best: PEANuT step ${x(p.peanutStepOverPytorch!)} · ${x(p.minPeanutStepOverPytorch!)}, LoRA step ${x(p.loraStepOverPytorch!)} · ${x(p.minLoraStepOverPytorch!)}, frozen forward ${x(p.forwardOverPytorch!)} · ${x(p.minForwardOverPytorch!)}.`);
  }
  process.stdout.write(`${lines.join('\n')}\n\nwrote ${args.out} (${report.totalS} s; load average ${report.machine.loadavgAtEnd.join(' ')})\n`);
}

const argv = process.argv.slice(2);
if (argv[0] === '--worker') {
  const res = await worker(argv[1] as Job, argv[2] as ModelKey, Number(argv[3]), Number(argv[4]));
  process.stdout.write(`\n${JSON.stringify(res)}\n`);
} else {
  await main();
}
