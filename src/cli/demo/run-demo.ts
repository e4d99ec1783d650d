/**
 * `peanut-onnx demo`: the whole job on the model and data the package ships, in a few seconds
 * on a laptop CPU (about 5 s on 2 shared cores, npm start-up included).
 *
 *   graphs/bert-tiny.onnx ──inject──▶ adapted.onnx ──train──▶ run/ (checkpoint, metrics)
 *                                             └──merge (trained θ)──▶ merged.onnx
 *
 * then evaluates the original, adapted and merged models on the shipped eval set and reports
 * accuracy before and after, the trainable-parameter budget, the merged-vs-adapted output
 * difference and the merged-vs-original inference time. Every step calls the same library
 * functions as the CLI commands (`inject`, `train`, `merge`), so the demo is also their
 * end-to-end check.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeModel, inject, inspectModel, loadModel, merge, nodeRuntime, PeanutError, readBatches, saveModel, train, type Feeds, type OnnxModel, type Session, type TrainEvent } from '../../index.ts';

type EpChoice = 'auto' | 'cpu' | 'cuda';
type MethodConfig = ReturnType<typeof inject>['meta']['config'];

/** Where the shipped demo model and data live (inside the package). */
export const DEMO_ASSETS = {
  model: fileURLToPath(new URL('../../../graphs/bert-tiny.onnx', import.meta.url)),
  train: fileURLToPath(new URL('../../../graphs/demo/train.jsonl', import.meta.url)),
  eval: fileURLToPath(new URL('../../../graphs/demo/eval.jsonl', import.meta.url)),
} as const;

/** Files the demo writes inside its output directory. */
export const DEMO_FILES = { adapted: 'adapted.onnx', run: 'run', merged: 'merged.onnx', report: 'demo.json' } as const;

/** The demo's defaults: PEANuT r 8 on query,value, 300 AdamW steps of 16 examples. */
export const DEMO_DEFAULTS = {
  outDir: 'peanut-demo',
  method: 'peanut',
  rank: 8,
  targets: 'query,value',
  steps: 300,
  batchSize: 16,
  lr: 1e-2,
  seed: 0,
  ep: 'cpu' as EpChoice,
  timingRuns: 60,
} as const;

export interface DemoOptions {
  /** Output directory (default `./peanut-demo`). */
  outDir?: string;
  /** Base model and data (default: the shipped ones). */
  model?: string;
  trainData?: string;
  evalData?: string;
  /** `peanut` (default) or `lora`. */
  method?: string;
  rank?: number;
  /** LoRA alpha (default 2·rank). */
  alpha?: number;
  targets?: string;
  steps?: number;
  batchSize?: number;
  lr?: number;
  /** Seed of the adapter initialisation and of the data order. */
  seed?: number;
  ep?: EpChoice;
  threads?: number;
  /** Inference runs per model for the timing comparison (after one warm-up). */
  timingRuns?: number;
  onEvent?: (e: DemoEvent) => void;
}

export type DemoEvent = { type: 'phase'; phase: 'inject' | 'train' | 'merge' | 'compare' | 'timing'; message: string } | { type: 'train'; event: TrainEvent };

export interface DemoResult {
  method: MethodConfig;
  targets: string[];
  /** Eval accuracy / loss of the adapted model before training (= the base model) and after. */
  before: { accuracy: number; loss: number };
  after: { accuracy: number; loss: number };
  /** Accuracy of the merged model computed from its own outputs (equals `after.accuracy`). */
  mergedAccuracy: number;
  trainableParams: number;
  modelParams: number;
  /** trainableParams / modelParams · 100. */
  trainablePercent: number;
  /** max |merged − adapted| over every eval logit. */
  mergedVsAdaptedMaxDiff: number;
  /** Median time of one eval-batch inference, original and merged model, and their ratio. */
  inference: { batch: number; originalMs: number; mergedMs: number; ratio: number };
  steps: number;
  ep: 'cpu' | 'cuda';
  seconds: { inject: number; train: number; merge: number; compare: number; timing: number; total: number };
  files: { adapted: string; run: string; checkpoint: string; metrics: string; merged: string; report: string };
}

const now = () => performance.now();
const secs = (ms: number) => Number((ms / 1000).toFixed(2));

/** Marks a folder as the demo's: only a folder holding it is ever cleared by a later demo. */
const DEMO_MARKER = '.peanut-onnx-demo';
/** Temp files of the demo's own atomic writes (a killed run may leave them). */
const TEMP_FILE = /^\..+\.tmp$/;

/**
 * Prepares the output directory: a new or empty one is created and marked as the demo's; one
 * that holds an earlier demo run (the marker, and only the demo's own files) has its run
 * directory replaced; anything else is refused, so the demo never deletes files it did not write.
 * The parent folder must exist (no recursive mkdir: it would loop forever under /proc).
 */
function prepareOutDir(outDir: string, inputs: readonly string[]): void {
  for (const input of inputs) {
    const inDir = resolve(dirname(input));
    if (inDir === outDir || inDir.startsWith(`${outDir}/`)) {
      throw new PeanutError('E_OUTPUT_EXISTS', `output directory '${outDir}' holds the demo's input ${input}; choose another -o directory (inputs are never overwritten)`);
    }
  }
  const mark = () => writeFileSync(join(outDir, DEMO_MARKER), 'written by peanut-onnx demo; a later demo run may replace this folder\n');
  if (!existsSync(outDir)) {
    if (!existsSync(dirname(outDir))) throw new PeanutError('E_FILE_NOT_FOUND', `the folder ${dirname(outDir)} does not exist; create it first or choose another -o directory`);
    try {
      mkdirSync(outDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new PeanutError('E_IO', `cannot create the folder ${outDir} (${code}); choose an -o directory in a folder you can write to`);
    }
    mark();
    return;
  }
  if (!statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${outDir} is a file; the demo writes into a directory`);
  const entries = readdirSync(outDir);
  if (entries.length === 0) {
    mark();
    return;
  }
  const ours = new Set<string>([...Object.values(DEMO_FILES), DEMO_MARKER]);
  const foreign = entries.filter((e) => !ours.has(e) && !TEMP_FILE.test(e));
  if (!entries.includes(DEMO_MARKER) || foreign.length > 0) {
    const shown = (foreign.length ? foreign : entries).slice(0, 3);
    throw new PeanutError('E_OUTPUT_EXISTS', `output directory '${outDir}' already holds other files (${shown.join(', ')}${entries.length > 3 ? ', …' : ''}) that the demo did not write; choose an empty or new -o directory`);
  }
  // An earlier demo run: its run directory is replaced (train refuses to start over checkpoints).
  rmSync(join(outDir, DEMO_FILES.run), { recursive: true, force: true });
  for (const e of entries) if (TEMP_FILE.test(e)) rmSync(join(outDir, e), { force: true });
}

/** The eval set as batches: feeds of the model's inputs, and the labels. */
function evalBatches(path: string, model: OnnxModel, batchSize: number): Array<{ feeds: Feeds; labels: number[] }> {
  return readBatches(path, model, { task: 'seq-cls', batchSize }).map(({ labels, ...feeds }) => ({ feeds, labels: Array.from(labels!.data as ArrayLike<number | bigint>, Number) }));
}

async function logitsOf(session: Session, input: ReturnType<typeof evalBatches>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const b of input) out.push((await session.run(b.feeds))[session.outputNames[0]!]!.data as Float32Array);
  return out;
}

function accuracy(logits: readonly Float32Array[], input: ReturnType<typeof evalBatches>): number {
  let correct = 0;
  let n = 0;
  logits.forEach((l, bi) => {
    const labels = input[bi]!.labels;
    const classes = l.length / labels.length;
    labels.forEach((label, r) => {
      let best = 0;
      for (let c = 1; c < classes; c++) if (l[r * classes + c]! > l[r * classes + best]!) best = c;
      if (best === label) correct++;
      n++;
    });
  });
  return n ? correct / n : NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Runs the demo: inject → train → merge → evaluate.
 *
 * @param options - output directory, training length and adapter settings; see `DemoOptions`.
 * @returns the measured numbers and the paths written.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const t0 = now();
  const emit = options.onEvent ?? (() => {});
  const modelPath = resolve(options.model ?? DEMO_ASSETS.model);
  const trainPath = resolve(options.trainData ?? DEMO_ASSETS.train);
  const evalPath = resolve(options.evalData ?? DEMO_ASSETS.eval);
  for (const p of [modelPath, trainPath, evalPath]) if (!existsSync(p)) throw new PeanutError('E_FILE_NOT_FOUND', `demo input not found: ${p}`);
  const outDir = resolve(options.outDir ?? DEMO_DEFAULTS.outDir);
  prepareOutDir(outDir, [modelPath, trainPath, evalPath]);
  const files = {
    adapted: join(outDir, DEMO_FILES.adapted),
    run: join(outDir, DEMO_FILES.run),
    merged: join(outDir, DEMO_FILES.merged),
    report: join(outDir, DEMO_FILES.report),
  };
  const rank = options.rank ?? DEMO_DEFAULTS.rank;
  const methodOptions = { method: options.method ?? DEMO_DEFAULTS.method, r: rank, alpha: options.alpha ?? 2 * rank };
  const seed = options.seed ?? DEMO_DEFAULTS.seed;
  const ep = options.ep ?? DEMO_DEFAULTS.ep;
  const sessionOpts = { ep, ...(options.threads ? { threads: options.threads } : {}) };

  // ---- inject -----------------------------------------------------------------------------
  let t = now();
  const original = loadModel(modelPath);
  const injected = inject(original, { ...methodOptions, targets: options.targets ?? DEMO_DEFAULTS.targets, seed });
  const method: MethodConfig = injected.meta.config;
  saveModel(injected.model, files.adapted);
  const trainableParams = [...injected.state.values()].reduce((s, v) => s + v.length, 0);
  const modelParams = inspectModel(original).parameters;
  emit({ type: 'phase', phase: 'inject', message: `injected ${method.method} (r ${method.r}) into ${injected.targets.length} layers: ${injected.targets.map((c) => c.module).join(', ')}` });
  const injectMs = now() - t;

  // ---- train ------------------------------------------------------------------------------
  t = now();
  const run = await train(files.adapted, {
    task: 'seq-cls',
    data: trainPath,
    eval: evalPath,
    outDir: files.run,
    steps: options.steps ?? DEMO_DEFAULTS.steps,
    batchSize: options.batchSize ?? DEMO_DEFAULTS.batchSize,
    lr: options.lr ?? DEMO_DEFAULTS.lr,
    schedule: 'linear',
    warmup: 0,
    seed,
    ep,
    ...(options.threads ? { threads: options.threads } : {}),
    saveEvery: 0,
    onEvent: (event) => emit({ type: 'train', event }),
  });
  const trainMs = now() - t;
  const first = run.evals[0];
  const last = run.evals.at(-1);
  if (!first || !last || first.eval_accuracy === undefined || last.eval_accuracy === undefined) throw new PeanutError('E_DATA', 'training produced no evaluation; is the eval set empty?');

  // ---- merge ------------------------------------------------------------------------------
  t = now();
  const theta = new Map([...run.params].map(([k, v]) => [k, v.data as Float32Array]));
  const merged = merge(injected.model, { params: theta, safe: true });
  saveModel(merged, files.merged);
  emit({ type: 'phase', phase: 'merge', message: `merged the trained ${method.method} weights into ${injected.targets.length} layers` });
  const mergeMs = now() - t;

  // ---- compare: adapted (trained θ) vs merged, on every eval example ---------------------------
  t = now();
  const trained = inject(original, { ...methodOptions, targets: options.targets ?? DEMO_DEFAULTS.targets, seed, init: theta });
  const batches = evalBatches(evalPath, original, 64);
  const examples = batches.reduce((n, b) => n + b.labels.length, 0);
  const adaptedSession = await nodeRuntime.createSession(encodeModel(trained.model.proto), sessionOpts);
  const mergedSession = await nodeRuntime.createSession(encodeModel(merged.proto), sessionOpts);
  const originalSession = await nodeRuntime.createSession(encodeModel(original.proto), sessionOpts);
  let maxDiff = 0;
  let mergedAccuracy = NaN;
  let inference = { batch: 0, originalMs: NaN, mergedMs: NaN, ratio: NaN };
  let compareMs = 0;
  let timingMs = 0;
  try {
    const a = await logitsOf(adaptedSession, batches);
    const m = await logitsOf(mergedSession, batches);
    a.forEach((x, i) => x.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - m[i]![j]!)))));
    mergedAccuracy = accuracy(m, batches);
    emit({ type: 'phase', phase: 'compare', message: `merged vs adapted on ${examples} eval examples: max |Δlogit| ${maxDiff.toExponential(2)}` });
    compareMs = now() - t;

    // ---- timing: original vs merged, alternating, same batch --------------------------------
    t = now();
    const timed = batches[0]!;
    const runs = Math.max(1, options.timingRuns ?? DEMO_DEFAULTS.timingRuns);
    await originalSession.run(timed.feeds);
    await mergedSession.run(timed.feeds);
    const to: number[] = [];
    const tm: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const [s, into] of i % 2 ? ([[mergedSession, tm], [originalSession, to]] as const) : ([[originalSession, to], [mergedSession, tm]] as const)) {
        const s0 = now();
        await s.run(timed.feeds);
        into.push(now() - s0);
      }
    }
    const originalMs = median(to);
    const mergedMs = median(tm);
    inference = { batch: timed.labels.length, originalMs: Number(originalMs.toFixed(3)), mergedMs: Number(mergedMs.toFixed(3)), ratio: Number((mergedMs / originalMs).toFixed(3)) };
    timingMs = now() - t;
  } finally {
    await adaptedSession.release();
    await mergedSession.release();
    await originalSession.release();
  }

  const result: DemoResult = {
    method,
    targets: injected.targets.map((c) => c.module),
    before: { accuracy: first.eval_accuracy, loss: first.eval_loss },
    after: { accuracy: last.eval_accuracy, loss: last.eval_loss },
    mergedAccuracy,
    trainableParams,
    modelParams,
    trainablePercent: Number(((100 * trainableParams) / modelParams).toFixed(3)),
    mergedVsAdaptedMaxDiff: maxDiff,
    inference,
    steps: run.step,
    ep: run.ep,
    seconds: { inject: secs(injectMs), train: secs(trainMs), merge: secs(mergeMs), compare: secs(compareMs), timing: secs(timingMs), total: 0 },
    files: { ...files, checkpoint: run.checkpoint, metrics: run.metricsLog },
  };
  result.seconds.total = secs(now() - t0);
  const tmp = `${files.report}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(tmp, files.report);
  return result;
}
