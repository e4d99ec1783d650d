/**
 * From a gradient model (forward + loss + one gradient output per θ, θ as graph inputs) build the
 * two graphs a run needs:
 *
 *   train graph  inputs:  the batch, θ, AdamW moments, step and hyper-parameters
 *                outputs: loss, grad_norm, updated θ, updated moments           (one run = one step)
 *   eval graph   inputs:  the batch, θ
 *                outputs: loss, prediction (logits; QA: prediction = start, prediction.1 = end)
 *
 * Frozen weights stay initializers (uploaded once when the session is created); only θ and the
 * small optimizer state cross the host/device boundary each step. θ must never be initializers in
 * these graphs, or ONNX Runtime would constant-fold ΔW.
 */
import type { ModelProto, ValueInfoProto } from '../onnx/proto.ts';
import { Graph, makeValueInfo, valueInfoType } from '../onnx/graph.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { editableCopy, graphOf, type OnnxModel } from '../onnx/model.ts';
import { PeanutError } from '../errors.ts';
import type { SessionOptions } from '../runtime/session.ts';
import { momentName } from '../formats/checkpoint-keys.ts';
import type { InputSpec, ModelBounds } from '../data/model-inputs.ts';
import type { LabelInput } from '../data/tasks.ts';
import { ADAMW_INPUTS, addAdamWInputs, emitAdamW, type AdamWInputNames } from './adamw.ts';

/** What the training graphs need from the autodiff's gradient model. */
export interface GradModelLike {
  model: OnnxModel;
  /** θ names: graph inputs of `model`, in a stable order. */
  params: readonly string[];
  /** Name of the scalar loss output. */
  loss: string;
  /** θ name → its gradient's value name. */
  grads: ReadonlyMap<string, string>;
  /** The label graph inputs and the data fields filling them. */
  labels: readonly LabelInput[];
  /** Name of the prediction (logits) value. */
  prediction: string;
  /** Every prediction value the loss reads (default: `prediction` alone). */
  predictions?: readonly string[];
  /** The data inputs with their roles (default: the graph's inputs, roles from their names). */
  inputs?: readonly InputSpec[];
  /** What data is checked against before training. */
  bounds?: ModelBounds;
  /** θ left out because they do not reach the loss, and the warning lines saying so. */
  dropped?: readonly string[];
  warnings?: readonly string[];
}

/** Fixed output names of the train graph. */
export const TRAIN_OUTPUTS = {
  loss: 'loss',
  gradNorm: 'grad_norm',
  param: (p: string) => `updated.${p}`,
  moment: (which: 'm' | 'v', p: string) => `updated.${momentName(which, p)}`,
} as const;

/** Fixed output names of the eval graph: the loss and the predictions (`prediction`, `prediction.1`, …). */
export const EVAL_OUTPUTS = { loss: 'loss', prediction: 'prediction' } as const;

/** The eval graph's name for prediction `i` (0 = `prediction`). */
export const evalPrediction = (i: number): string => (i === 0 ? EVAL_OUTPUTS.prediction : `${EVAL_OUTPUTS.prediction}.${i}`);

/** A graph input: name, element type, dims, and for data inputs the role collation fills it by. */
export interface TensorSpec extends InputSpec {
  /** Dims: a number, a symbolic name, or null when unknown. */
  dims: Array<number | string | null>;
}

export interface GraphIO {
  /** Batch inputs (everything that is not θ, optimizer state or a hyper-parameter). */
  data: TensorSpec[];
  params: TensorSpec[];
}

export interface TrainingGraphs {
  train: ModelProto;
  eval: ModelProto;
  io: GraphIO;
  hyperInputs: AdamWInputNames;
  labels: LabelInput[];
  /** The model outputs the loss reads (the eval graph's predictions, in order). */
  heads: string[];
  bounds: ModelBounds;
  dropped: string[];
  warnings: string[];
}

function spec(v: ValueInfoProto): TensorSpec {
  const t = valueInfoType(v);
  if (!t) throw new PeanutError('E_GRAPH', `graph input '${v.name}' has no tensor type`);
  return { name: v.name, elemType: t.elemType, dims: t.dims ?? [] };
}

/** Sets the graph's outputs to `outputs` (Identity-renamed to fixed names) and prunes the rest. */
function setOutputs(graph: Graph, b: GraphBuilder, outputs: Array<{ from: string; to: string; like: TensorSpec | { elemType: number; dims: TensorSpec['dims'] } }>): void {
  graph.proto.output = [];
  for (const o of outputs) {
    if (o.from !== o.to) b.op('Identity', [o.from], {}, { outputs: [o.to] });
    graph.proto.output.push(makeValueInfo(o.to, o.like.elemType, o.like.dims));
  }
  graph.removeDeadNodes();
}

/**
 * Builds the train and eval graphs. The gradient model is not modified.
 *
 * @param grad - the autodiff's gradient model (θ as inputs).
 */
export function buildTrainingGraphs(grad: GradModelLike): TrainingGraphs {
  const source = graphOf(grad.model);
  const inputs = new Map(source.input.map((v) => [v.name, v]));
  const params: TensorSpec[] = grad.params.map((p) => {
    const v = inputs.get(p);
    if (!v) throw new PeanutError('E_GRAPH', `tweaker parameter '${p}' is not an input of the gradient graph`);
    return spec(v);
  });
  const paramNames = new Set(grad.params);
  const roles = new Map((grad.inputs ?? []).map((i) => [i.name, i]));
  const data = source.input
    .filter((v) => !paramNames.has(v.name))
    .map((v) => {
      const r = roles.get(v.name);
      return { ...spec(v), ...(r?.role ? { role: r.role } : {}), ...(r?.seqAxis !== undefined ? { seqAxis: r.seqAxis } : {}), ...(r?.batchAxis !== undefined ? { batchAxis: r.batchAxis } : {}) };
    });
  const predictions = [...(grad.predictions ?? [grad.prediction])];
  const lossSpec = { elemType: 1, dims: [] as TensorSpec['dims'] };

  // ---- eval: forward + loss + prediction -----------------------------------------------------
  const evalProto = editableCopy(grad.model.proto);
  {
    const g = new Graph(evalProto.graph!);
    const b = new GraphBuilder(g, '/eval');
    const types = predictions.map((p) => {
      const out = source.output.find((o) => o.name === p);
      return out ? valueInfoType(out) : undefined;
    });
    setOutputs(g, b, [
      { from: grad.loss, to: EVAL_OUTPUTS.loss, like: lossSpec },
      ...predictions.map((p, i) => ({ from: p, to: evalPrediction(i), like: types[i] ? { elemType: types[i]!.elemType, dims: types[i]!.dims ?? [] } : { elemType: 1, dims: [] } })),
    ]);
    types.forEach((t, i) => {
      if (!t) evalProto.graph!.output[1 + i] = makeValueInfo(evalPrediction(i));
    });
  }

  // ---- train: forward + loss + backward + clip + AdamW ---------------------------------------
  const trainProto = editableCopy(grad.model.proto);
  const g = new Graph(trainProto.graph!);
  const b = new GraphBuilder(g, '/optimizer');
  const adamParams = params.map((p) => {
    const gradName = grad.grads.get(p.name);
    if (!gradName) throw new PeanutError('E_GRAPH', `the gradient graph has no gradient for '${p.name}'`);
    const m = momentName('m', p.name);
    const v = momentName('v', p.name);
    for (const n of [m, v]) {
      g.reserve(n);
      g.proto.input.push(makeValueInfo(n, p.elemType, p.dims));
    }
    return { param: p.name, grad: gradName, m, v, dtype: p.elemType };
  });
  const hyperInputs = addAdamWInputs(b, ADAMW_INPUTS, { clip: true });
  const r = emitAdamW(b, adamParams, hyperInputs, { clip: true });
  setOutputs(g, b, [
    { from: grad.loss, to: TRAIN_OUTPUTS.loss, like: lossSpec },
    { from: r.gradNorm, to: TRAIN_OUTPUTS.gradNorm, like: lossSpec },
    ...params.map((p) => ({ from: r.params.get(p.name)!, to: TRAIN_OUTPUTS.param(p.name), like: p })),
    ...params.map((p) => ({ from: r.m.get(p.name)!, to: TRAIN_OUTPUTS.moment('m', p.name), like: p })),
    ...params.map((p) => ({ from: r.v.get(p.name)!, to: TRAIN_OUTPUTS.moment('v', p.name), like: p })),
  ]);
  return {
    train: trainProto,
    eval: evalProto,
    io: { data, params },
    hyperInputs,
    labels: [...grad.labels],
    heads: predictions,
    bounds: { ...grad.bounds },
    dropped: [...(grad.dropped ?? [])],
    warnings: [...(grad.warnings ?? [])],
  };
}

/**
 * Session options for the train and eval graphs, chosen for training rather than serving:
 *
 * - Memory pattern **off**. ONNX Runtime's memory pattern plans one allocation layout for one set
 *   of input shapes and reuses it while shapes repeat. With dynamic padding the sequence length
 *   changes from batch to batch, so the plan would be discarded and re-made on most steps; the
 *   CPU arena (left on) already serves changing shapes from pooled blocks.
 * - Graph optimization **all**. The frozen part of the graph (weights are initializers) is
 *   constant-folded and its ops fused once, when the session is created. θ are graph inputs, so
 *   ΔW = f(W0; θ) is never folded into a constant, and every step sees the current θ.
 * - Weight prepacking **off**. Prepacking keeps a packed copy of every constant GEMM operand
 *   (the frozen weights, once for the forward's MatMul and once for the backward's Gemm) for the
 *   session's life: with it a bert-base step was 6–10 % faster but the process 180–340 MiB
 *   larger (tools/bench.ts; docs/training.md). A caller's `extra` can turn it back on.
 * - Threads: ONNX Runtime's default (one intra-op thread per physical core) unless `threads` is
 *   given; sequential execution (the default), since a training graph is one long dependency
 *   chain with little to gain from inter-op parallelism. Bit-exact resume assumes the same thread
 *   count before and after, as float reductions are partitioned by thread.
 */
export function trainingSessionOptions(
  opts: { ep?: string | undefined; threads?: number | undefined; externalData?: SessionOptions['externalData'] | undefined; extra?: SessionOptions['extra'] | undefined } = {},
): SessionOptions {
  return {
    ep: opts.ep ?? 'auto',
    memPattern: false,
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { threads: opts.threads } : {}),
    ...(opts.externalData ? { externalData: opts.externalData } : {}),
    extra: withConfigEntry(opts.extra, 'session', 'disable_prepacking', '1'),
  };
}

/**
 * `extra` (onnxruntime session options) with a session config entry added under its own `extra`
 * (onnxruntime's spelling of config entries: `extra.session.disable_prepacking`); one the caller
 * set wins.
 */
function withConfigEntry(extra: SessionOptions['extra'], group: string, key: string, value: string): Record<string, unknown> {
  const entries = (extra?.extra ?? {}) as Record<string, Record<string, unknown> | undefined>;
  return { ...extra, extra: { ...entries, [group]: { [key]: value, ...entries[group] } } };
}
