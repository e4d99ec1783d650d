/**
 * The gradient model: an adapted model turned into one graph that computes the task loss and the
 * gradient of that loss with respect to every tweaker parameter θ, in standard ONNX ops, ready to
 * run in an ordinary onnxruntime InferenceSession.
 *
 *   adapted.onnx (θ initializers) ──▶ θ as graph inputs + loss head + backward nodes
 *   outputs: [loss, prediction, <key>.grad for every θ]
 *
 * θ become graph inputs, never initializers: ONNX Runtime would otherwise constant-fold ΔW.
 * Frozen weights stay initializers and get no gradient. The training graph appends gradient
 * clipping and the optimizer update to this same graph.
 */
import { PeanutError } from '../errors.ts';
import { isFloatType } from '../onnx/dtype.ts';
import { Graph, makeValueInfo } from '../onnx/graph.ts';
import { defaultOpset, editableCopy, graphOf, type OnnxModel } from '../onnx/model.ts';
import { create, OperatorSetIdProtoSchema, type NodeProto, type TensorProto } from '../onnx/proto.ts';
import { tensorDims } from '../onnx/tensor.ts';
import { paramNames, readAdapterMeta } from '../adapter/adapter-meta.ts';
import { appendLossHead, type Task } from './loss.ts';
import { buildGradients } from '../autodiff/gradient.ts';
import { checkRulesWithoutShapes } from '../autodiff/check.ts';
import { probeShapes } from '../runtime/probe.ts';
import type { Runtime } from '../runtime/session.ts';
import { type Feeds } from '../runtime/tensors.ts';
import { type ShapeTable } from '../onnx/shapes.ts';
import type { GradRegistry } from '../autodiff/registry.ts';

export interface GradModelOptions {
  task: Task;
  /** The prediction output (default: `logits`). */
  output?: string;
  /** A real batch (graph inputs + `labels`) to probe shapes with; default: synthetic batches. */
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
  /** θ names (PEFT keys), now graph inputs, in adapter order. */
  params: string[];
  /** Scalar loss output. */
  loss: string;
  /** θ name -> gradient output name (`<key>.grad`). */
  grads: Map<string, string>;
  /** The labels graph input. */
  labels: string;
  /** The prediction output. */
  prediction: string;
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

/**
 * Builds the loss-and-gradient model of an adapted model.
 *
 * @param runtime - the ONNX Runtime shapes are probed with
 * @param adapted - a model made by `peanut-onnx inject` (not modified)
 * @param opts - task, prediction output, optional real batch for shape probing
 */
export async function buildGradModel(runtime: Runtime, adapted: OnnxModel, opts: GradModelOptions): Promise<GradModel> {
  const params = [...(opts.params ?? adapterParams(adapted))];
  const opset = defaultOpset(adapted.proto);
  const proto = editableCopy(adapted.proto);
  const g = proto.graph!;
  const model: OnnxModel = { proto, baseDir: adapted.baseDir, ...(adapted.path ? { path: adapted.path } : {}) };
  const graph = new Graph(g);

  const head = appendLossHead(graph, { task: opts.task, opset, ...(opts.output !== undefined ? { output: opts.output } : {}) });
  graph.invalidate();

  // Probe with θ still initializers (nothing extra to feed).
  let shapes: ShapeTable;
  try {
    shapes = await probeShapes(runtime, model, opts.batch ? { batches: opts.staticShapes ? [opts.batch, opts.batch] : [opts.batch] } : {});
  } catch (err) {
    // A model onnxruntime cannot run may hold an op we could not differentiate anyway: say so.
    checkRulesWithoutShapes(graph, { loss: head.loss, params, ...(opts.registry ? { registry: opts.registry } : {}) });
    throw err;
  }

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

  const { grads: raw, pathNodes, backwardNodes, opset: gradOpset } = buildGradients({
    graph,
    opset,
    loss: head.loss,
    params,
    shapes,
    baseDir: adapted.baseDir,
    ...(opts.registry ? { registry: opts.registry } : {}),
  });

  if (gradOpset !== opset) proto.opsetImport = proto.opsetImport.map((o) => (o.domain === '' || o.domain === 'ai.onnx' ? create(OperatorSetIdProtoSchema, { ...o, version: BigInt(gradOpset) }) : o));

  // Name each gradient `<key>.grad` (an Identity, which ORT removes).
  const grads = new Map<string, string>();
  const outputs = [makeValueInfo(head.loss, shapes.get(head.loss)!.dtype, []), g.output.find((o) => o.name === head.prediction) ?? makeValueInfo(head.prediction)];
  for (const p of params) {
    const name = graph.uniqueName(`${p}.grad`);
    const t = initialParams.get(p)!;
    graph.addNode({ opType: 'Identity', inputs: [raw.get(p)!], outputs: [name], name: `/grad/output/${p}` });
    grads.set(p, name);
    outputs.push(makeValueInfo(name, t.dataType, tensorDims(t)));
  }
  g.output = outputs;
  graph.removeDeadNodes();
  return { model, params, loss: head.loss, grads, labels: head.labels, prediction: head.prediction, shapes, initialParams, pathNodes, backwardNodes };
}
