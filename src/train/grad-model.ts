/**
 * The gradient model: an adapted model turned into one graph that computes the task loss and the
 * gradient of that loss with respect to every tweaker parameter θ, in standard ONNX ops, ready to
 * run in an ordinary onnxruntime InferenceSession.
 *
 *   adapted.onnx (θ initializers) ──▶ θ as graph inputs + loss head + backward nodes
 *   outputs: [loss, the prediction(s), <key>.grad for every θ that reaches the loss]
 *
 * θ become graph inputs, never initializers: ONNX Runtime would otherwise constant-fold ΔW.
 * Frozen weights stay initializers and get no gradient, and so do the θ of targets that cannot
 * reach the chosen head's loss (a layer feeding only another head): they are left out with one
 * warning line each. The training graph appends gradient clipping and the optimizer update to
 * this same graph.
 */
import { PeanutError } from '../errors.ts';
import { isFloatType } from '../onnx/dtype.ts';
import { Graph, makeValueInfo } from '../onnx/graph.ts';
import { defaultOpset, editableCopy, graphOf, type OnnxModel } from '../onnx/model.ts';
import { create, OperatorSetIdProtoSchema, type NodeProto, type TensorProto } from '../onnx/proto.ts';
import { tensorDims } from '../onnx/tensor.ts';
import { paramNames, readAdapterMeta } from '../adapter/adapter-meta.ts';
import { describeInputs, modelBounds, type InputSpec, type ModelBounds } from '../data/model-inputs.ts';
import type { LabelInput } from '../data/tasks.ts';
import type { CollateSpec } from '../data/example-set.ts';
import { appendLossHead, type Task } from './loss.ts';
import { buildGradients } from '../autodiff/gradient.ts';
import { checkRulesWithoutShapes } from '../autodiff/check.ts';
import { paramsReachingLoss } from '../autodiff/reach.ts';
import { defaultRegistry, type GradRegistry } from '../autodiff/registry.ts';
import { probeShapes } from '../runtime/probe.ts';
import type { Runtime } from '../runtime/session.ts';
import { type Feeds } from '../runtime/tensors.ts';
import { type ShapeTable, type ValueShape } from '../onnx/shapes.ts';
import { probeBatch, sizeOf } from './probe-batches.ts';

export interface GradModelOptions {
  task: Task;
  /** The graph outputs holding the predictions (default: the task's, e.g. `logits`). */
  heads?: readonly string[];
  /** A real batch (graph inputs + labels) to probe shapes with; default: synthetic batches. */
  batch?: Feeds;
  /**
   * Probe with `batch` alone, so every dim is static and the graph runs at that batch's shapes
   * only. For models whose inputs cannot be synthesized (dims tied by relations between inputs).
   */
  staticShapes?: boolean;
  /** Parameters to differentiate (default: the adapter's θ). */
  params?: readonly string[];
  registry?: GradRegistry;
}

export interface GradModel {
  /** The gradient model (shares tensors with the adapted model, which is not modified). */
  model: OnnxModel;
  /** θ names (PEFT keys), now graph inputs, in adapter order: those that reach the loss. */
  params: string[];
  /** Scalar loss output. */
  loss: string;
  /** θ name -> gradient output name (`<key>.grad`). */
  grads: Map<string, string>;
  /** The label graph inputs and the data fields that fill them. */
  labels: LabelInput[];
  /** The first prediction output (the only one except for QA). */
  prediction: string;
  /** Every prediction output the loss reads, in the task's order. */
  predictions: string[];
  /** The data inputs (labels included) with their roles: what a batch must carry or collation fills. */
  inputs: InputSpec[];
  /** What data is checked against (vocabulary, positions, token types, the head's classes). */
  bounds: ModelBounds;
  /** θ that do not reach the loss through differentiable ops: left out, with `warnings` saying so. */
  dropped: string[];
  /** One line per target left out. */
  warnings: string[];
  /** Probed shapes of the forward values (loss head included). */
  shapes: ShapeTable;
  /** θ's values as they were stored in the adapted model (feed them, or start training from them). */
  initialParams: Map<string, TensorProto>;
  /** Forward nodes that were differentiated and the backward nodes appended. */
  pathNodes: NodeProto[];
  backwardNodes: NodeProto[];
}

const LEGACY_MARKERS = ['.peanut_', '.lora_'];

/** θ of an adapted model: from its adapter metadata, else float initializers named like PEFT keys. */
export function adapterParams(model: OnnxModel): string[] {
  const meta = readAdapterMeta(model);
  if (meta) return paramNames(meta);
  const names = graphOf(model)
    .initializer.filter((t) => isFloatType(t.dataType) && LEGACY_MARKERS.some((m) => t.name.includes(m)))
    .map((t) => t.name);
  if (names.length === 0) throw new PeanutError('E_NOT_ADAPTED', 'the model has no tweaker parameters; run `peanut-onnx inject` on it first');
  return names;
}

/** Tasks whose head's last dim is a class (or vocabulary) count labels must stay below. */
const CLASS_HEADS = new Set<Task>(['seq-cls', 'image-cls', 'token-cls', 'masked-lm', 'causal-lm']);

/**
 * Drops the θ that cannot reach the loss; one warning per target (module) dropped.
 * @throws PeanutError E_GRAPH when none reaches it.
 */
function reachingParams(adapted: OnnxModel, graph: Graph, params: readonly string[], loss: string, heads: readonly string[], task: Task, shapes: ShapeTable, registry: GradRegistry) {
  graph.topologicalSort();
  const meta = (name: string): ValueShape | undefined => {
    const s = shapes.get(name);
    if (s) return s;
    const t = graph.initializer(name);
    return t ? { dtype: t.dataType, shape: tensorDims(t) } : undefined;
  };
  const reach = new Set(paramsReachingLoss(graph.nodes, { roots: [loss], params, registry, meta }));
  const dropped = params.filter((p) => !reach.has(p));
  const headText = `${heads.length > 1 ? 'heads' : 'head'} ${heads.join(', ')}`;
  if (reach.size === 0) {
    throw new PeanutError('E_GRAPH', `none of the tweakers reaches the loss of --task ${task} (${headText}) through differentiable ops; inject into layers on the path to that output (--targets), or pick the output they feed with --head`);
  }
  // One line per target: by module when the adapter records them, else per parameter.
  const targets = readAdapterMeta(adapted)?.targets ?? [];
  const moduleOf = new Map(targets.flatMap((t) => t.params.map((p) => [p.name, t.module] as const)));
  const modules = [...new Set(dropped.map((p) => moduleOf.get(p) ?? p))];
  const warnings = modules.map((m) => `warning: target '${m}' does not reach the loss of --task ${task} (${headText}) through differentiable ops; it is left out of training`);
  return { params: params.filter((p) => reach.has(p)), dropped, warnings };
}

/**
 * Builds the loss-and-gradient model of an adapted model.
 *
 * @param runtime - the ONNX Runtime shapes are probed with
 * @param adapted - a model made by `peanut-onnx inject` (not modified)
 * @param opts - task, prediction outputs, optional real batch for shape probing
 */
export async function buildGradModel(runtime: Runtime, adapted: OnnxModel, opts: GradModelOptions): Promise<GradModel> {
  const allParams = [...(opts.params ?? adapterParams(adapted))];
  const registry = opts.registry ?? defaultRegistry();
  const opset = defaultOpset(adapted.proto);
  const proto = editableCopy(adapted.proto);
  const g = proto.graph!;
  const model: OnnxModel = { proto, baseDir: adapted.baseDir, ...(adapted.path ? { path: adapted.path } : {}) };
  const graph = new Graph(g);

  const head = appendLossHead(graph, { task: opts.task, opset, ...(opts.heads?.length ? { heads: opts.heads } : {}) });
  graph.invalidate();
  const inputs = describeInputs(g, new Set(allParams));
  const collate: CollateSpec & { task: Task } = { inputs, labels: head.labels, task: opts.task };

  // Probe with θ still initializers (nothing extra to feed), on batches collated as training does.
  let shapes: ShapeTable;
  try {
    let batches: Feeds[];
    if (!opts.batch) batches = [probeBatch(collate, { B: 2, T: 3 }), probeBatch(collate, { B: 3, T: 5 })];
    else if (opts.staticShapes) batches = [opts.batch, opts.batch];
    else {
      const { B, T } = sizeOf(opts.batch, collate);
      batches = [opts.batch, probeBatch(collate, { B: B + 1, T: T + 2 })];
    }
    shapes = await probeShapes(runtime, model, { batches });
  } catch (err) {
    // A model onnxruntime cannot run may hold an op we could not differentiate anyway: say so.
    checkRulesWithoutShapes(graph, { loss: head.loss, params: allParams, registry });
    throw err;
  }

  const reach = reachingParams(adapted, graph, allParams, head.loss, head.predictions, opts.task, shapes, registry);
  const params = reach.params;
  const classes = CLASS_HEADS.has(opts.task) ? shapes.get(head.predictions[0]!)?.shape.at(-1) : undefined;
  const bounds: ModelBounds = { ...modelBounds(g, inputs), ...(typeof classes === 'number' && classes > 0 ? { classes } : {}) };

  // θ: initializers -> graph inputs.
  const initialParams = new Map<string, TensorProto>();
  for (const p of params) {
    const t = graph.initializer(p);
    if (!t) throw new PeanutError('E_NOT_ADAPTED', `tweaker parameter '${p}' is not an initializer of the adapted model`);
    graph.removeInitializer(p);
    g.input = g.input.filter((v) => v.name !== p);
    g.input.push(makeValueInfo(p, t.dataType, tensorDims(t)));
    initialParams.set(p, t);
  }
  graph.invalidate();

  const { grads: raw, pathNodes, backwardNodes, opset: gradOpset } = buildGradients({ graph, opset, loss: head.loss, params, shapes, baseDir: adapted.baseDir, registry });

  if (gradOpset !== opset) proto.opsetImport = proto.opsetImport.map((o) => (o.domain === '' || o.domain === 'ai.onnx' ? create(OperatorSetIdProtoSchema, { ...o, version: BigInt(gradOpset) }) : o));

  // Name each gradient `<key>.grad` (an Identity, which ORT removes).
  const grads = new Map<string, string>();
  const outputs = [makeValueInfo(head.loss, shapes.get(head.loss)!.dtype, []), ...head.predictions.map((p) => g.output.find((o) => o.name === p) ?? makeValueInfo(p))];
  for (const p of params) {
    const name = graph.uniqueName(`${p}.grad`);
    const t = initialParams.get(p)!;
    graph.addNode({ opType: 'Identity', inputs: [raw.get(p)!], outputs: [name], name: `/grad/output/${p}` });
    grads.set(p, name);
    outputs.push(makeValueInfo(name, t.dataType, tensorDims(t)));
  }
  g.output = outputs;
  graph.removeDeadNodes();
  return {
    model,
    params,
    loss: head.loss,
    grads,
    labels: head.labels,
    prediction: head.predictions[0]!,
    predictions: head.predictions,
    inputs,
    bounds,
    dropped: reach.dropped,
    warnings: reach.warnings,
    shapes,
    initialParams,
    pathNodes,
    backwardNodes,
  };
}
