/**
 * A training plan, built once from an adapted model: the train and eval graphs, their manifest
 * and the initial θ. `artifacts` writes it to a directory (src/node/artifacts.ts); `train` runs
 * it (src/train/loop.ts), from memory or from that directory.
 */
import { PeanutError } from '../errors.ts';
import { encodeModel, graphOf, type OnnxModel } from '../onnx/model.ts';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor.ts';
import { readAdapterMeta, summarizeAdapter } from '../adapter/adapter-meta.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import { isTask, TASKS, type Task } from '../data/tasks.ts';
import type { Runtime, SessionOptions } from '../runtime/session.ts';
import { initialState, type TrainState } from './checkpoint.ts';
import { buildGradModel } from './grad-model.ts';
import { makeManifest, type Manifest } from './manifest.ts';
import { buildTrainingGraphs, type TrainingGraphs } from './training-graph.ts';

export interface TrainingPlan {
  graphs: TrainingGraphs;
  manifest: Manifest;
  /** Initial θ (PEFT keys), from the adapted model's initializers: the trained ones first, then those left out. */
  params: Map<string, SafeTensor>;
  /** The folder the graphs' external data locations are relative to (the adapted model's). */
  baseDir: string;
}

/**
 * What a run needs, wherever it came from: the graphs as bytes (a plan built in memory) or files
 * (an artifact directory), the manifest, and the state to start from.
 */
/** A graph for a session: its bytes, its file, or a function encoding it on demand. */
export type GraphSource = Uint8Array | string | (() => Uint8Array);

/** The bytes or file of a `GraphSource`, encoding it if it is a function. */
export function graphBytes(source: GraphSource): Uint8Array | string {
  return typeof source === 'function' ? source() : source;
}

export interface RunGraphs {
  manifest: Manifest;
  /**
   * The train graph: bytes, a file, or a function that encodes it when the session is created
   * (so the bytes need not stay in memory for the run).
   */
  train: GraphSource;
  /** The eval graph, likewise (a function encodes it only when the first evaluation needs it). */
  eval: GraphSource;
  init: TrainState;
  /** External data files of graphs given as bytes. */
  externalData?: SessionOptions['externalData'];
}

/** `a,b` or a list as head names (none: the task's default). */
export function headList(head: string | readonly string[] | undefined): string[] | undefined {
  if (head === undefined) return undefined;
  const list = (typeof head === 'string' ? head.split(',') : [...head]).map((h) => h.trim()).filter(Boolean);
  return list.length ? list : undefined;
}

/** The task name, checked. */
export function checkTask(task: string | undefined): Task {
  if (!task) throw new PeanutError('E_BAD_CONFIG', `--task is required to build training graphs; one of ${TASKS.join(', ')}`);
  if (!isTask(task)) throw new PeanutError('E_BAD_CONFIG', `unknown task '${task}'; valid: ${TASKS.join(', ')}`);
  return task;
}

/**
 * Builds the training plan of an adapted model (shapes are probed through `runtime`).
 *
 * @param adapted - a model written by `inject` (θ as initializers, adapter metadata present).
 */
export async function buildTrainingPlan(runtime: Runtime, adapted: OnnxModel, opts: { task?: string; heads?: readonly string[] }): Promise<TrainingPlan> {
  const task = checkTask(opts.task);
  const meta = readAdapterMeta(adapted);
  if (!meta || meta.targets.length === 0) {
    throw new PeanutError('E_NOT_ADAPTED', `${adapted.path ?? 'the model'} has no tweakers; run \`peanut-onnx inject\` first and pass the adapted model`);
  }
  // θ values are read before the gradient model turns those initializers into inputs.
  const inits = new Map(graphOf(adapted).initializer.map((t) => [t.name, t]));
  const params = new Map<string, SafeTensor>();
  for (const p of meta.targets.flatMap((t) => t.params)) {
    const t = inits.get(p.name);
    if (!t) throw new PeanutError('E_NOT_ADAPTED', `adapted model has no initializer '${p.name}'`);
    params.set(p.name, { dtype: 'F32', shape: tensorDims(t), data: tensorToFloat32(t, adapted.baseDir) });
  }
  const grad = await buildGradModel(runtime, adapted, { task, ...(opts.heads?.length ? { heads: opts.heads } : {}) });
  const graphs = buildTrainingGraphs(grad);
  for (const p of graphs.io.params) if (!params.has(p.name)) throw new PeanutError('E_GRAPH', `gradient graph parameter '${p.name}' is not a tweaker parameter of the adapted model`);
  const manifest = makeManifest(graphs, { task, peanut: summarizeAdapter(meta), source: adapted.path ?? null, runtime });
  // Every θ goes into the checkpoint (merge and export need them all); those left out of training
  // keep their initial values and zero moments.
  const trained = graphs.io.params.map((p) => p.name);
  const order = [...trained, ...[...params.keys()].filter((k) => !trained.includes(k))];
  return { graphs, manifest, params: new Map(order.map((k) => [k, params.get(k)!])), baseDir: adapted.baseDir };
}

/** The plan's starting state: its θ, zero moments, step 0. */
export function planInitialState(plan: Pick<TrainingPlan, 'params' | 'manifest'>): TrainState {
  const { manifest } = plan;
  return initialState(plan.params, manifest.hyperparameters, manifest.peanut, manifest.task);
}

/** A plan as a run takes it, graphs encoded in memory (external data stays in its files). */
export function planToRun(plan: TrainingPlan, externalData?: SessionOptions['externalData']): RunGraphs {
  return {
    manifest: plan.manifest,
    // Encoded when their sessions are created: the train graph's bytes are not held for the
    // run, and a run without eval data never encodes a second copy of the weights.
    train: () => encodeModel(plan.graphs.train),
    eval: () => encodeModel(plan.graphs.eval),
    init: planInitialState(plan),
    ...(externalData?.length ? { externalData } : {}),
  };
}
