/**
 * The training loop, on any ONNX Runtime: one optimizer step = one session run of the train
 * graph. The batch, θ, the AdamW moments and the step's optimizer scalars (`adamWScalarFeeds`,
 * float32) go in; the loss, the gradient norm, the new θ and the new moments come out. The loop moves tensors, keeps
 * the schedule and the data order, and hands checkpoints and metrics lines to its caller (files
 * on Node, memory in a browser).
 *
 * Exactness of a resume: the state after step k is fully described by θ, the moments, k, and
 * the data cursor (epoch, position); each epoch's order is a pure function of (seed, epoch). A
 * resumed run therefore feeds the same tensors to the same graph as an uninterrupted one and
 * ends with the same θ bit for bit (same execution provider and thread count).
 */
import { PeanutError } from '../errors.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import type { CollateSpec, ExampleSet } from '../data/example-set.ts';
import { BatchCursor } from '../data/order.ts';
import type { Runtime, Session } from '../runtime/session.ts';
import { f32Tensor, type Feeds } from '../runtime/tensors.ts';
import { adamWScalarFeeds } from './adamw.ts';
import type { Hyperparameters, TrainState } from './checkpoint.ts';
import { evaluate, type EvalMetrics } from './evaluate.ts';
import { graphBytes, type RunGraphs } from './plan.ts';
import { learningRate } from './schedule.ts';
import { TRAIN_OUTPUTS, trainingSessionOptions } from './training-graph.ts';

export type TrainEvent =
  | { type: 'start'; ep: string; epRequested: string; startStep: number; totalSteps: number; examples: number; stepsPerEpoch: number; resumedFrom?: string }
  | { type: 'step'; step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; stepsPerSec: number; etaSec: number }
  | ({ type: 'eval'; step: number } & EvalMetrics)
  | { type: 'checkpoint'; step: number; path: string }
  /** Something the run goes on without (a target that cannot reach the loss): one line. */
  | { type: 'warning'; message: string };

export interface LoopOptions {
  data: ExampleSet;
  eval?: ExampleSet;
  /** Where the run starts (a fresh state or a resumed checkpoint's). */
  state: TrainState;
  hyper: Hyperparameters;
  stepsPerEpoch: number;
  ep?: string;
  threads?: number;
  /** Extra onnxruntime session options, passed through (log level, profiling). */
  sessionExtra?: Readonly<Record<string, unknown>>;
  maxLength?: number;
  /** Save a checkpoint every N steps (0 = only at the end). */
  saveEvery: number;
  /** Evaluate every N steps (0 = only at the start and the end). */
  evalEvery: number;
  /** Stop cleanly (checkpoint saved) at the next step boundary when aborted. */
  signal?: AbortSignal;
  onEvent?: (e: TrainEvent) => void;
  /**
   * Awaited after every step: a page hands the event loop back here, so that clicks, timers and
   * rendering happen during training (a chain of awaited session runs alone never yields to them).
   */
  afterStep?: () => Promise<void>;
  /** Stores a checkpoint; returns where it went (a path, or a label). */
  save: (state: TrainState) => string | Promise<string>;
  /** Records one metrics line (a step, or an evaluation). */
  log: (line: Record<string, unknown>) => void;
  /** Where the state came from, when resumed (for the start event). */
  resumedFrom?: string;
}

export interface LoopResult {
  /** Execution provider used. */
  ep: string;
  /** Optimizer steps done in total (including those before a resume). */
  step: number;
  totalSteps: number;
  /** Where the last checkpoint went. */
  checkpoint: string;
  /** True when stopped early by the abort signal. */
  interrupted: boolean;
  /** Loss of the last step run. */
  lastLoss: number | undefined;
  evals: Array<{ step: number } & EvalMetrics>;
  /** The final state (θ, moments, step, data cursor). */
  state: TrainState;
}

function f32(t: SafeTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new PeanutError('E_DTYPE', `tweaker parameters must be float32 (F32), got ${t.dtype}`);
  return t.data;
}

/**
 * Runs the loop from `opts.state` to `opts.hyper.totalSteps` (or until aborted).
 *
 * @throws PeanutError E_NON_FINITE when a step's loss or gradient norm is not finite (the last
 *   good state is saved first, without that step's update).
 */
export async function runTraining(runtime: Runtime, graphs: RunGraphs, opts: LoopOptions): Promise<LoopResult> {
  const { manifest } = graphs;
  const { hyper, data } = opts;
  const totalSteps = hyper.totalSteps;
  const task = manifest.task;
  const spec: CollateSpec = { inputs: manifest.train.inputs.data, labels: manifest.labels, task, ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}) };
  const emit = opts.onEvent ?? (() => {});
  for (const message of manifest.warnings) emit({ type: 'warning', message });

  // Why these options: see trainingSessionOptions (memory pattern off, full graph optimization).
  const sessionOpts = trainingSessionOptions({ ep: opts.ep, threads: opts.threads, externalData: graphs.externalData, extra: opts.sessionExtra });
  const session = await runtime.createSession(graphBytes(graphs.train), sessionOpts);
  const ep = session.ep;
  let evalSession: Session | undefined;

  let state: TrainState = { ...opts.state, hyper, task, peanut: opts.state.peanut ?? manifest.peanut };
  const names = manifest.train.inputs.params.map((p) => p.name);
  const shapes = new Map(manifest.train.inputs.params.map((p) => [p.name, state.params.get(p.name)!.shape]));
  let theta = new Map(names.map((k) => [k, f32(state.params.get(k)!)]));
  let mState = new Map(names.map((k) => [k, f32(state.m.get(k)!)]));
  let vState = new Map(names.map((k) => [k, f32(state.v.get(k)!)]));
  const tensors = (values: Map<string, Float32Array>) => new Map([...values].map(([k, d]) => [k, { dtype: 'F32' as const, shape: shapes.get(k)!, data: d }]));
  // θ left out of training (they do not reach the loss) stay in the state as they were.
  const snapshot = (): TrainState => ({
    ...state,
    params: new Map([...state.params, ...tensors(theta)]),
    m: new Map([...state.m, ...tensors(mState)]),
    v: new Map([...state.v, ...tensors(vState)]),
  });

  emit({ type: 'start', ep, epRequested: opts.ep ?? 'auto', startStep: state.step, totalSteps, examples: data.size, stepsPerEpoch: opts.stepsPerEpoch, ...(opts.resumedFrom ? { resumedFrom: opts.resumedFrom } : {}) });

  const evals: LoopResult['evals'] = [];
  const runEval = async () => {
    if (!opts.eval) return;
    evalSession ??= await runtime.createSession(graphBytes(graphs.eval), { ...sessionOpts, ep });
    const feeds: Feeds = {};
    for (const [k, d] of theta) feeds[k] = f32Tensor(d, shapes.get(k)!);
    const metrics = await evaluate(evalSession, opts.eval, { ...spec, inputs: manifest.eval.inputs.data }, feeds, hyper.batchSize);
    const line = { step: state.step, ...metrics };
    evals.push(line);
    opts.log(line);
    emit({ type: 'eval', ...line });
  };

  let lastCheckpoint = opts.resumedFrom ?? '';
  let lastSavedStep = opts.resumedFrom ? state.step : -1;
  const save = async () => {
    if (lastSavedStep === state.step) return;
    lastCheckpoint = await opts.save(snapshot());
    lastSavedStep = state.step;
    emit({ type: 'checkpoint', step: state.step, path: lastCheckpoint });
  };

  const hyperNames = manifest.train.inputs.hyperparameters;
  /** The step's optimizer scalars, computed here in float64 and fed as float32 (no double in the graph). */
  const optimizerFeeds = (step: number, lr: number): Feeds => {
    const values = adamWScalarFeeds(hyperNames, { lr, beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay, maxGradNorm: hyper.gradClip }, step);
    return Object.fromEntries(Object.entries(values).map(([name, x]) => [name, { type: 'float32', data: x, dims: [] }]));
  };

  const cursor = new BatchCursor({ size: data.size, batchSize: hyper.batchSize, seed: hyper.seed, shuffle: hyper.shuffle }, state.epoch, state.position);
  const outs = manifest.train.outputs;
  const moments = manifest.train.inputs.moments;
  let lastLoss: number | undefined;
  let interrupted = false;
  const started = performance.now();
  const firstStep = state.step;

  try {
    if (state.step === 0) await runEval();
    while (state.step < totalSteps) {
      if (opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      const step = state.step + 1;
      const lr = learningRate(step, hyper);
      const indices = cursor.next();
      const feeds: Feeds = optimizerFeeds(step, lr);
      for (const [name, t] of data.batch(indices, spec)) feeds[name] = t;
      for (const [k, d] of theta) {
        const dims = shapes.get(k)!;
        feeds[k] = f32Tensor(d, dims);
        feeds[moments.m[k]!] = f32Tensor(mState.get(k)!, dims);
        feeds[moments.v[k]!] = f32Tensor(vState.get(k)!, dims);
      }
      const out = await session.run(feeds);
      const loss = (out[TRAIN_OUTPUTS.loss]!.data as Float32Array)[0]!;
      const gradNorm = (out[TRAIN_OUTPUTS.gradNorm]!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        const what = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${gradNorm}`;
        // The very first step of a fresh run: nothing to keep, nothing is written.
        if (state.step === firstStep && !opts.resumedFrom) {
          throw new PeanutError('E_NON_FINITE', `${what} at step ${step} (lr ${lr}), the first step of the run; nothing was saved. Lower --lr or set --grad-clip and start again (check the data and the model if it persists)`);
        }
        // Keep the last good state: the update of this step is discarded.
        await save();
        throw new PeanutError(
          'E_NON_FINITE',
          `${what} at step ${step} (lr ${lr}); training stopped without applying that update. The last good state (step ${state.step}) is in ${lastCheckpoint}. Lower --lr or set --grad-clip, then continue with --resume`,
        );
      }
      theta = new Map(names.map((k) => [k, out[outs.params[k]!]!.data as Float32Array]));
      mState = new Map(names.map((k) => [k, out[outs.moments.m[k]!]!.data as Float32Array]));
      vState = new Map(names.map((k) => [k, out[outs.moments.v[k]!]!.data as Float32Array]));
      state = { ...state, step, epoch: cursor.epoch, position: cursor.position };
      lastLoss = loss;
      opts.log({ step, epoch: Number((cursor.epoch + cursor.position / data.size).toFixed(6)), loss, lr, grad_norm: gradNorm, batch_size: indices.length });
      const elapsed = (performance.now() - started) / 1000;
      const rate = (step - firstStep) / Math.max(elapsed, 1e-9);
      emit({ type: 'step', step, totalSteps, loss, lr, gradNorm, stepsPerSec: rate, etaSec: (totalSteps - step) / Math.max(rate, 1e-9) });
      if (opts.evalEvery > 0 && step % opts.evalEvery === 0 && step < totalSteps) await runEval();
      if (opts.saveEvery > 0 && step % opts.saveEvery === 0) await save();
      if (opts.afterStep) await opts.afterStep();
    }
    if (!interrupted && evals.at(-1)?.step !== state.step) await runEval();
    await save();
  } catch (err) {
    // A failure mid-run (bad data found in a later batch, a runtime error) keeps the work done so
    // far, as an interrupt does, and says where it is.
    if (err instanceof PeanutError && err.code === 'E_NON_FINITE') throw err;
    if (state.step === firstStep) throw err;
    try {
      await save();
    } catch {
      throw err;
    }
    if (!(err instanceof PeanutError)) throw err;
    throw new PeanutError(err.code, `${err.message} (training stopped at step ${state.step + 1}; the last good state, step ${state.step}, is saved in ${lastCheckpoint}: fix the cause, then continue with --resume)`);
  } finally {
    await session.release();
    await evalSession?.release();
  }
  return { ep, step: state.step, totalSteps, checkpoint: lastCheckpoint, interrupted, lastLoss, evals, state: snapshot() };
}
