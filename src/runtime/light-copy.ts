/**
 * A light copy of a model for ONNX Runtime to load without its weights: every large float
 * initializer becomes a run-time fill of its shape and type (Expand of a scalar). Values of
 * weights never decide shapes or whether a graph is valid, so the copy loads exactly when the
 * model does (same graph, same types and shapes), encodes in milliseconds and takes no memory
 * for weights. Shape probing and the load check (load-check.ts) run on it.
 */
import { isFloatType } from '../onnx/dtype.ts';
import { defaultOpset, graphOf, type OnnxModel } from '../onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../onnx/proto.ts';
import { externalRef, floatTensor, int64Tensor, isExternal, numElements, tensorDims } from '../onnx/tensor.ts';
import type { SessionOptions } from './session.ts';

/** Float initializers with at least this many elements are not copied. */
const LARGE_WEIGHT = 1024;

export interface LightCopy {
  proto: ModelProto;
  /** The external data files the copy still references (small or non-float tensors). */
  externalData: NonNullable<SessionOptions['externalData']>;
}

/**
 * The light copy of `model` (not modified), with `extraOutputs` appended to its graph outputs.
 * Below opset 8 (no Expand) the weights are kept as they are.
 */
export function withWeightsAsFills(model: OnnxModel, extraOutputs: readonly ValueInfoProto[] = []): LightCopy {
  const g = graphOf(model);
  const kept: TensorProto[] = [];
  const fills: NodeProto[] = [];
  const replaced = new Set<string>();
  const canFill = defaultOpset(model.proto) >= 8;
  for (const t of g.initializer) {
    const dims = tensorDims(t);
    if (!canFill || !isFloatType(t.dataType) || numElements(dims) < LARGE_WEIGHT) {
      kept.push(t);
      continue;
    }
    const scalar = `${t.name}::probe_scalar`;
    const shape = `${t.name}::probe_shape`;
    kept.push(floatTensor(scalar, [], [0.01], t.dataType), int64Tensor(shape, [dims.length], dims));
    replaced.add(t.name);
    fills.push(create(NodeProtoSchema, { opType: 'Expand', input: [scalar, shape], output: [t.name], name: `${t.name}::probe_fill` }));
  }
  const graph = create(GraphProtoSchema, { ...g, initializer: kept, input: g.input.filter((v) => !replaced.has(v.name)), node: [...fills, ...g.node], output: [...g.output, ...extraOutputs] });
  const locs = new Set<string>();
  for (const t of kept) if (isExternal(t)) locs.add(externalRef(t).location);
  return { proto: create(ModelProtoSchema, { ...model.proto, graph }), externalData: [...locs].map((loc) => ({ path: loc, data: `${model.baseDir}/${loc}` })) };
}
