/**
 * Facts about a main graph that the structural analysis and the head detection share:
 * topological positions, which values are constant (stored, or computed from stored values
 * only), which inputs of an op carry data (not shapes, indices or axes), and the weight-holding
 * nodes with live activations ("projections").
 */
import { subgraphsOf } from '../onnx/attributes.ts';
import type { Graph } from '../onnx/graph.ts';
import type { NodeProto } from '../onnx/proto.ts';
import { linearOpOf, type LinearOpSpec } from './linear-ops.ts';

const RANDOM_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/**
 * Inputs that carry the data an op transforms, for ops that also take shapes, indices, axes or
 * conditions. Ops not listed carry data in every input; ops with `[]` produce no data from data
 * (shapes, sizes, ranges).
 */
const DATA_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Reshape: [0],
  Expand: [0],
  Tile: [0],
  Slice: [0],
  Gather: [0],
  GatherElements: [0],
  GatherND: [0],
  Squeeze: [0],
  Unsqueeze: [0],
  Pad: [0],
  Split: [0],
  Where: [1, 2],
  Resize: [0],
  Dropout: [0],
  CumSum: [0],
  TopK: [0],
  Trilu: [0],
  ReduceMean: [0],
  ReduceSum: [0],
  ReduceMax: [0],
  ReduceMin: [0],
  ReduceProd: [0],
  ReduceL2: [0],
  ReduceSumSquare: [0],
  LayerNormalization: [0],
  SimplifiedLayerNormalization: [0],
  RMSNormalization: [0],
  RotaryEmbedding: [0],
  SkipLayerNormalization: [0, 1],
  SkipSimplifiedLayerNormalization: [0, 1],
  Shape: [],
  Size: [],
  ConstantOfShape: [],
  Range: [],
  NonZero: [],
  EyeLike: [],
};

export interface GraphFacts {
  g: Graph;
  /** Position of each node in a topological order (the node list's own where it is one). */
  position: ReadonlyMap<NodeProto, number>;
  /** Nodes in that order. */
  order: readonly NodeProto[];
  /** Weight-holding nodes whose weight is constant and whose activations are not. */
  projections: ReadonlyMap<NodeProto, LinearOpSpec>;
  /** A stored value, or one computed from stored values only. */
  isConst(value: string): boolean;
  /** The value's producer (undefined for graph inputs, initializers and outer-scope values). */
  producer(value: string): NodeProto | undefined;
  consumers(value: string): NodeProto[];
  /** The non-empty, non-constant inputs of a node that carry data (see DATA_INPUTS). */
  liveDataInputs(node: NodeProto): string[];
  isGraphInput(value: string): boolean;
}

/** The data input indexes of a node (every input unless the op takes shapes/indices/axes). */
export function dataInputIndexes(node: NodeProto): readonly number[] {
  return DATA_INPUTS[node.opType] ?? node.input.map((_, i) => i);
}

/** Computes the facts of a graph (its node list is not changed). */
export function graphFacts(g: Graph): GraphFacts {
  const order = g.topologicalOrder();
  const position = new Map(order.map((n, i) => [n, i]));
  const constant = new Set<string>(g.proto.initializer.map((t) => t.name));
  for (const node of order) {
    if (RANDOM_OPS.has(node.opType) || subgraphsOf(node).length > 0) continue;
    if (node.input.every((i) => !i || constant.has(i))) for (const o of node.output) if (o) constant.add(o);
  }
  const inputs = new Set(g.proto.input.map((v) => v.name).filter((n) => !constant.has(n)));
  const isConst = (v: string) => constant.has(v);
  const projections = new Map<NodeProto, LinearOpSpec>();
  for (const node of order) {
    const spec = linearOpOf(node);
    if (!spec) continue;
    const w = node.input[spec.weightInput];
    const x = node.input[spec.dataInput];
    if (w && x && isConst(w) && !isConst(x)) projections.set(node, spec);
  }
  return {
    g,
    position,
    order,
    projections,
    isConst,
    producer: (v) => g.producer(v),
    consumers: (v) => g.consumers(v),
    liveDataInputs: (node) =>
      dataInputIndexes(node)
        .map((i) => node.input[i])
        .filter((v): v is string => !!v && !constant.has(v)),
    isGraphInput: (v) => inputs.has(v),
  };
}
