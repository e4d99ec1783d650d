/**
 * The training loop behind `peanut-onnx train` and the library's `train()`.
 *
 * One optimizer step = one `InferenceSession.run` of the train graph: the batch, θ, the AdamW
 * moments and the step's optimizer scalars (`adamWScalarFeeds`) go in; the loss, the gradient
 * norm, the new θ and the new moments come out. The loop only moves tensors, keeps the schedule, the data order,
 * the metrics log and the checkpoints.
 *
 * Exactness of `--resume`: the state after step k is fully described by θ, the moments, k, and
 * the data cursor (epoch, position); each epoch's order is a pure function of (seed, epoch). A
 * resumed run therefore feeds the same tensors to the same graph as an uninterrupted one and
 * ends with the same θ bit for bit (same execution provider and thread count).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { createSession, ort, type EpChoice } from '../runtime.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { SafeTensor } from '../safetensors.ts';
import { openExampleSet, type CollateSpec, type ExampleSet } from '../data/example-set.ts';
import { loadTokenizer } from '../data/tokenize.ts';
import { BatchCursor, stepsPerEpoch } from '../data/order.ts';
import { readArtifacts, type Manifest } from './artifacts.ts';
import { latestCheckpoint, loadCheckpoint, pruneCheckpoints, saveCheckpoint, type Hyperparameters, type TrainState } from './checkpoint.ts';
import { learningRate, type ScheduleName } from './schedule.ts';
import { evaluate, type EvalMetrics } from './evaluate.ts';
import { TRAIN_OUTPUTS, trainingSessionOptions } from './training-graph.ts';
import { adamWScalarFeeds } from './adamw.ts';

export interface TrainOptions {
  /** Training data (.jsonl or .safetensors). */
  data: string;
  /** Run directory: checkpoints/ and metrics.jsonl go here. */
  outDir: string;
  /** Evaluation data. */
  eval?: string;
  /** Task; required when training straight from an adapted .onnx, checked against the manifest otherwise. */
  task?: string;
  /** Number of epochs (default 1 when `steps` is not given). */
  epochs?: number;
  /** Number of optimizer steps (overrides `epochs`). */
  steps?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Global-norm clipping threshold; null or undefined = no clipping. */
  gradClip?: number | null;
  warmup?: number;
  schedule?: ScheduleName;
  seed?: number;
  /** Shuffle the data each epoch (default true). */
  shuffle?: boolean;
  ep?: EpChoice;
  /** Intra-op threads (default: ONNX Runtime's choice). */
  threads?: number;
  /** Continue from the latest checkpoint in `outDir`. */
  resume?: boolean;
  /** Metrics log (default `<outDir>/metrics.jsonl`). */
  log?: string;
  /** Save a checkpoint every N steps (0 = only at the end). Default 500. */
  saveEvery?: number;
  /** Keep only the newest N checkpoints, deleting older ones after each save (default: keep all). */
  keepCheckpoints?: number;
  /** Evaluate every N steps (0 = only at the start and the end). Default 0. */
  evalEvery?: number;
  /** tokenizer.json for JSONL examples that carry `text`. */
  tokenizer?: string;
  /** Truncate JSONL sequences to this many tokens. */
  maxLength?: number;
  /** Stop cleanly (checkpoint saved) at the next step boundary when aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** Progress and log events. */
  onEvent?: (e: TrainEvent) => void;
}

export type TrainEvent =
  | { type: 'start'; ep: 'cpu' | 'cuda'; epRequested: EpChoice; startStep: number; totalSteps: number; examples: number; stepsPerEpoch: number; resumedFrom?: string }
  | { type: 'step'; step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; stepsPerSec: number; etaSec: number }
  | ({ type: 'eval'; step: number } & EvalMetrics)
  | { type: 'checkpoint'; step: number; path: string };

export interface TrainResult {
  /** Execution provider used. */
  ep: 'cpu' | 'cuda';
  /** Optimizer steps done in total (including those before a resume). */
  step: number;
  totalSteps: number;
  /** Path of the last checkpoint written. */
  checkpoint: string;
  /** True when stopped early by the abort signal. */
  interrupted: boolean;
  /** Loss of the last step run. */
  lastLoss: number | undefined;
  evals: Array<{ step: number } & EvalMetrics>;
  /** Final θ (PEFT keys). */
  params: Map<string, SafeTensor>;
  metricsLog: string;
}

interface Source {
  manifest: Manifest;
  train: string | Uint8Array;
  eval: string | Uint8Array;
  init: TrainState;
  /** External data files when the graphs are passed as bytes. */
  externalData?: Array<{ path: string; data: string }>;
}

async function resolveSource(source: string, task: string | undefined): Promise<Source> {
  if (!existsSync(source)) throw new PeanutError('E_FILE_NOT_FOUND', `not found: ${source} (pass an artifact directory or an adapted .onnx)`);
  if (statSync(source).isDirectory()) {
    const a = readArtifacts(source);
    if (task && task !== a.manifest.task) {
      throw new PeanutError('E_BAD_CONFIG', `--task ${task} does not match the artifacts, which were built for '${a.manifest.task}'; rebuild them with \`peanut-onnx artifacts --task ${task}\``);
    }
    return { manifest: a.manifest, train: a.trainPath, eval: a.evalPath, init: loadCheckpoint(a.checkpointPath) };
  }
  const { buildArtifactsInMemory } = await import('./build.ts');
  const built = await buildArtifactsInMemory(source, { task });
  return built;
}

const DEFAULT_SAVE_EVERY = 500;

function hyperFrom(base: Omit<Hyperparameters, 'totalSteps'> & { totalSteps?: number }, o: TrainOptions): Omit<Hyperparameters, 'totalSteps'> {
  const pick = <T>(v: T | undefined, d: T): T => (v === undefined ? d : v);
  return {
    lr: pick(o.lr, base.lr),
    weightDecay: pick(o.weightDecay, base.weightDecay),
    beta1: pick(o.beta1, base.beta1),
    beta2: pick(o.beta2, base.beta2),
    eps: pick(o.eps, base.eps),
    gradClip: pick(o.gradClip, base.gradClip),
    warmup: pick(o.warmup, base.warmup),
    schedule: pick(o.schedule, base.schedule),
    batchSize: pick(o.batchSize, base.batchSize),
    seed: pick(o.seed, base.seed),
    shuffle: pick(o.shuffle, base.shuffle),
  };
}

function validate(h: Hyperparameters): void {
  const bad = (m: string) => new PeanutError('E_BAD_CONFIG', m);
  if (!(h.lr >= 0) || !Number.isFinite(h.lr)) throw bad(`learning rate must be a finite number >= 0, got ${h.lr}`);
  if (!(h.beta1 >= 0 && h.beta1 < 1) || !(h.beta2 >= 0 && h.beta2 < 1)) throw bad(`betas must be in [0, 1), got ${h.beta1}, ${h.beta2}`);
  if (!(h.eps >= 0)) throw bad(`eps must be >= 0, got ${h.eps}`);
  if (!Number.isInteger(h.batchSize) || h.batchSize < 1) throw bad(`batch size must be a positive integer, got ${h.batchSize}`);
  if (h.gradClip !== null && !(h.gradClip > 0)) throw bad(`grad clip must be > 0, got ${h.gradClip}`);
  if (!Number.isInteger(h.totalSteps) || h.totalSteps < 1) throw bad(`the run must have at least one step, got ${h.totalSteps}`);
}

/** Rewrites the metrics log keeping only lines at or before `step` (after a resume). */
function truncateLog(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step?: number }).step! <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, new TextEncoder().encode(kept.map((l) => `${l}\n`).join('')));
}

function f32(t: SafeTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new PeanutError('E_DTYPE', `tweaker parameters must be float32 (F32), got ${t.dtype}`);
  return t.data;
}

/**
 * Fine-tunes the tweaker parameters.
 *
 * @param source - an artifact directory (from `artifacts`) or an adapted .onnx.
 * @param options - data, run directory and hyper-parameters; see `TrainOptions`.
 */
export async function train(source: string, options: TrainOptions): Promise<TrainResult> {
  const src = await resolveSource(source, options.task);
  const { manifest } = src;
  const task = manifest.task;
  const outDir = resolve(options.outDir);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${options.outDir} is a file; the run directory must be a directory`);
  mkdirSync(outDir, { recursive: true });
  const logPath = resolve(options.log ?? join(outDir, 'metrics.jsonl'));

  // ---- state: fresh or resumed ---------------------------------------------------------------
  let state: TrainState;
  let resumedFrom: string | undefined;
  const latest = latestCheckpoint(outDir);
  if (options.resume) {
    if (!latest) throw new PeanutError('E_FILE_NOT_FOUND', `nothing to resume: ${join(outDir, 'checkpoints')} holds no checkpoint; start the run without --resume`);
    state = loadCheckpoint(latest.path);
    resumedFrom = latest.path;
    const want = new Set(manifest.train.inputs.params.map((p) => p.name));
    for (const k of want) if (!state.params.has(k)) throw new PeanutError('E_BAD_SAFETENSORS', `${latest.path} has no tensor '${k}'; it belongs to another model or adapter`);
  } else {
    if (latest) throw new PeanutError('E_OUTPUT_EXISTS', `${outDir} already holds checkpoints (latest step ${latest.step}); continue it with --resume, or choose a new -o run directory`);
    state = src.init;
  }

  // ---- data -------------------------------------------------------------------------------
  const tokenizer = options.tokenizer ? loadTokenizer(options.tokenizer) : undefined;
  const data = openExampleSet(options.data, { tokenizer });
  const evalData: ExampleSet | undefined = options.eval ? openExampleSet(options.eval, { tokenizer }) : undefined;
  const spec: CollateSpec = { inputs: manifest.train.inputs.data, labels: manifest.labels, task, maxLength: options.maxLength };

  const base = options.resume ? state.hyper : { ...manifest.hyperparameters };
  const h0 = hyperFrom(base, options);
  const perEpoch = stepsPerEpoch({ size: data.size, batchSize: h0.batchSize });
  const totalSteps = options.steps ?? (options.epochs !== undefined ? options.epochs * perEpoch : options.resume && state.hyper.totalSteps ? state.hyper.totalSteps : perEpoch);
  const hyper: Hyperparameters = { ...h0, totalSteps };
  validate(hyper);
  state = { ...state, hyper, task, peanut: state.peanut ?? manifest.peanut };
  if (state.step >= totalSteps) {
    throw new PeanutError('E_BAD_CONFIG', `the run is already at step ${state.step} of ${totalSteps}; pass a larger --steps or --epochs to train further`);
  }

  // ---- sessions -----------------------------------------------------------------------------
  // Why these options: see trainingSessionOptions (memory pattern off, full graph optimization).
  const sessionOpts = trainingSessionOptions({ ep: options.ep, threads: options.threads, externalData: src.externalData });
  const { session, ep } = await createSession(src.train, sessionOpts);
  let evalSession: ort.InferenceSession | undefined;

  const params = new Map(manifest.train.inputs.params.map((p) => [p.name, state.params.get(p.name)!]));
  let theta = new Map([...params].map(([k, t]) => [k, f32(t)]));
  let mState = new Map([...params].map(([k]) => [k, f32(state.m.get(k)!)]));
  let vState = new Map([...params].map(([k]) => [k, f32(state.v.get(k)!)]));
  const shapes = new Map([...params].map(([k, t]) => [k, t.shape]));
  const snapshot = (): TrainState => ({
    ...state,
    params: new Map([...theta].map(([k, d]) => [k, { dtype: 'F32' as const, shape: shapes.get(k)!, data: d }])),
    m: new Map([...mState].map(([k, d]) => [k, { dtype: 'F32' as const, shape: shapes.get(k)!, data: d }])),
    v: new Map([...vState].map(([k, d]) => [k, { dtype: 'F32' as const, shape: shapes.get(k)!, data: d }])),
  });

  // ---- metrics log ----------------------------------------------------------------------------
  mkdirSync(dirname(logPath), { recursive: true });
  if (options.resume) truncateLog(logPath, state.step);
  else writeFileAtomic(logPath, new Uint8Array(0));
  const log = (obj: Record<string, unknown>) => appendFileSync(logPath, `${JSON.stringify(obj)}\n`);

  const emit = options.onEvent ?? (() => {});
  emit({ type: 'start', ep, epRequested: options.ep ?? 'auto', startStep: state.step, totalSteps, examples: data.size, stepsPerEpoch: perEpoch, resumedFrom });

  const evals: TrainResult['evals'] = [];
  const runEval = async () => {
    if (!evalData) return;
    evalSession ??= (await createSession(src.eval, { ...sessionOpts, ep })).session;
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, d] of theta) feeds[k] = new ort.Tensor('float32', d, shapes.get(k)!);
    const metrics = await evaluate(evalSession, evalData, { ...spec, inputs: manifest.eval.inputs.data }, feeds, hyper.batchSize);
    const line = { step: state.step, ...metrics };
    evals.push(line);
    log(line);
    emit({ type: 'eval', ...line });
  };

  let lastCheckpoint = resumedFrom ?? '';
  let lastSavedStep = resumedFrom ? state.step : -1;
  const save = () => {
    if (lastSavedStep === state.step) return;
    lastCheckpoint = saveCheckpoint(outDir, snapshot());
    lastSavedStep = state.step;
    if (options.keepCheckpoints) pruneCheckpoints(outDir, options.keepCheckpoints);
    emit({ type: 'checkpoint', step: state.step, path: lastCheckpoint });
  };

  const hyperNames = manifest.train.inputs.hyperparameters;
  const optimizerFeeds = (step: number, lr: number): Record<string, ort.Tensor> => {
    const values = adamWScalarFeeds(hyperNames, { lr, beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay, maxGradNorm: hyper.gradClip }, step);
    return Object.fromEntries(Object.entries(values).map(([name, x]) => [name, new ort.Tensor('float32', x, [])]));
  };

  const cursor = new BatchCursor({ size: data.size, batchSize: hyper.batchSize, seed: hyper.seed, shuffle: hyper.shuffle }, state.epoch, state.position);
  const saveEvery = options.saveEvery ?? DEFAULT_SAVE_EVERY;
  const evalEvery = options.evalEvery ?? 0;
  let lastLoss: number | undefined;
  let interrupted = false;
  const started = performance.now();
  const firstStep = state.step;

  try {
    if (state.step === 0) await runEval();
    while (state.step < totalSteps) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const step = state.step + 1;
      const lr = learningRate(step, hyper);
      const indices = cursor.next();
      const feeds = optimizerFeeds(step, lr);
      for (const [name, t] of data.batch(indices, spec)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      for (const [k, d] of theta) {
        const dims = shapes.get(k)!;
        feeds[k] = new ort.Tensor('float32', d, dims);
        feeds[manifest.train.inputs.moments.m[k]!] = new ort.Tensor('float32', mState.get(k)!, dims);
        feeds[manifest.train.inputs.moments.v[k]!] = new ort.Tensor('float32', vState.get(k)!, dims);
      }
      const out = await session.run(feeds);
      const loss = (out[TRAIN_OUTPUTS.loss]!.data as Float32Array)[0]!;
      const gradNorm = (out[TRAIN_OUTPUTS.gradNorm]!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        // Keep the last good state: the update of this step is discarded.
        save();
        const what = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${gradNorm}`;
        throw new PeanutError(
          'E_NON_FINITE',
          `${what} at step ${step} (lr ${lr}); training stopped without applying that update. The last good state (step ${state.step}) is in ${lastCheckpoint}. Lower --lr or set --grad-clip, then continue with --resume`,
        );
      }
      const outs = manifest.train.outputs;
      theta = new Map([...theta.keys()].map((k) => [k, out[outs.params[k]!]!.data as Float32Array]));
      mState = new Map([...theta.keys()].map((k) => [k, out[outs.moments.m[k]!]!.data as Float32Array]));
      vState = new Map([...theta.keys()].map((k) => [k, out[outs.moments.v[k]!]!.data as Float32Array]));
      state = { ...state, step, epoch: cursor.epoch, position: cursor.position };
      lastLoss = loss;
      log({ step, epoch: Number((cursor.epoch + cursor.position / data.size).toFixed(6)), loss, lr, grad_norm: gradNorm, batch_size: indices.length });
      const elapsed = (performance.now() - started) / 1000;
      const rate = (step - firstStep) / Math.max(elapsed, 1e-9);
      emit({ type: 'step', step, totalSteps, loss, lr, gradNorm, stepsPerSec: rate, etaSec: (totalSteps - step) / Math.max(rate, 1e-9) });
      if (evalEvery > 0 && step % evalEvery === 0 && step < totalSteps) await runEval();
      if (saveEvery > 0 && step % saveEvery === 0) save();
    }
    if (!interrupted && evals.at(-1)?.step !== state.step) await runEval();
    save();
  } finally {
    await session.release();
    await evalSession?.release();
  }
  return {
    ep,
    step: state.step,
    totalSteps,
    checkpoint: lastCheckpoint,
    interrupted,
    lastLoss,
    evals,
    params: snapshot().params,
    metricsLog: logPath,
  };
}
