/**
 * The lowest default-domain opset a gradient graph is built at, and when a model's opset import
 * may be raised to it.
 *
 * Backward nodes share the model's default-domain opset import. Before opset 7, Add, Sub, Mul and
 * Div broadcast only through a `broadcast`/`axis` attribute pair, Cast takes its target as a
 * string, and onnxruntime implements none of them; so the backward pass is emitted for opset 7
 * (MIN_GRADIENT_OPSET) and the import of a model below 7 is raised to 7 — but only where that
 * provably changes no existing node's meaning.
 *
 * The proof: an ONNX node means what the latest version of its operator at or below the imported
 * opset defines (its "resolved" version). Raising the import from `from` to 7 re-resolves every
 * default-domain node; a node whose operator has no version in (from, 7] resolves to the very
 * same schema, so its meaning, attributes and types are unchanged. `OP_VERSIONS` lists, for every
 * default-domain operator that exists before opset 7, its versions up to 7 (from the ONNX
 * operator changelog). The raise is allowed only if every node, in the main graph and in every
 * subgraph (If/Loop bodies share the import), passes that test; an operator missing from the table
 * (unknown, or added at 7 or later, so invalid at `from`) fails it. Nodes of other domains do not
 * depend on the default-domain import.
 */
import type { GraphProto } from '../onnx/proto.ts';
import { subgraphsOf } from '../onnx/attributes.ts';
import { PeanutError } from '../errors.ts';

/** The opset the gradient emitters target at least (see the module comment). */
export const MIN_GRADIENT_OPSET = 7;

/** Versions ≤ 7 of every default-domain operator that exists before opset 7. */
const OP_VERSIONS: Readonly<Record<string, readonly number[]>> = {
  Abs: [1, 6], Add: [1, 6, 7], And: [1, 7], ArgMax: [1], ArgMin: [1], AveragePool: [1, 7],
  BatchNormalization: [1, 6, 7], Cast: [1, 6], Ceil: [1, 6], Clip: [1, 6], Concat: [1, 4], Constant: [1],
  Conv: [1], ConvTranspose: [1], DepthToSpace: [1], Div: [1, 6, 7], Dropout: [1, 6, 7], Elu: [1, 6],
  Equal: [1, 7], Exp: [1, 6], Flatten: [1], Floor: [1, 6], GRU: [1, 3, 7], Gather: [1], Gemm: [1, 6, 7],
  GlobalAveragePool: [1], GlobalLpPool: [1, 2], GlobalMaxPool: [1], Greater: [1, 7], HardSigmoid: [1, 6],
  Hardmax: [1], Identity: [1], If: [1], InstanceNormalization: [1, 6], LRN: [1], LSTM: [1, 7],
  LeakyRelu: [1, 6], Less: [1, 7], Log: [1, 6], LogSoftmax: [1], Loop: [1], LpNormalization: [1],
  LpPool: [1, 2], MatMul: [1], Max: [1, 6], MaxPool: [1], MaxRoiPool: [1], Mean: [1, 6], Min: [1, 6],
  Mul: [1, 6, 7], Neg: [1, 6], Not: [1], Or: [1, 7], PRelu: [1, 6, 7], Pad: [1, 2], Pow: [1, 7], RNN: [1, 7],
  RandomNormal: [1], RandomNormalLike: [1], RandomUniform: [1], RandomUniformLike: [1], Reciprocal: [1, 6],
  ReduceL1: [1], ReduceL2: [1], ReduceLogSum: [1], ReduceLogSumExp: [1], ReduceMax: [1], ReduceMean: [1],
  ReduceMin: [1], ReduceProd: [1], ReduceSum: [1], ReduceSumSquare: [1], Relu: [1, 6], Reshape: [1, 5],
  Selu: [1, 6], Shape: [1], Sigmoid: [1, 6], Size: [1], Slice: [1], Softmax: [1], Softplus: [1], Softsign: [1],
  SpaceToDepth: [1], Split: [1, 2], Sqrt: [1, 6], Squeeze: [1], Sub: [1, 6, 7], Sum: [1, 6], Tanh: [1, 6],
  Tile: [1, 6], TopK: [1], Transpose: [1], Unsqueeze: [1], Upsample: [1, 7], Xor: [1, 7],
};

/** The version of `op` a model importing `opset` (≤ 7) uses, or undefined if none exists. */
function resolved(op: string, opset: number): number | undefined {
  const vs = OP_VERSIONS[op];
  if (!vs) return undefined;
  let v: number | undefined;
  for (const x of vs) if (x <= opset) v = x;
  return v;
}

/** The first default-domain node (in `g` or its subgraphs) whose meaning changes from `from` to `to`. */
function changedNode(g: GraphProto, from: number, to: number): { op: string; name: string; before?: number; after?: number } | undefined {
  for (const n of g.node) {
    if (!n.domain || n.domain === 'ai.onnx') {
      const before = resolved(n.opType, from);
      const after = resolved(n.opType, to);
      if (before === undefined || before !== after) return { op: n.opType, name: n.name, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
    }
    for (const sub of subgraphsOf(n)) {
      const hit = changedNode(sub, from, to);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * The opset the backward pass of a graph importing `opset` is emitted for: `opset` itself from
 * MIN_GRADIENT_OPSET on, else MIN_GRADIENT_OPSET when raising the import provably keeps every
 * node's meaning (see the module comment). The caller sets the model's import to the result.
 *
 * @throws PeanutError E_UNSUPPORTED_OP when the opset is below 7 and some node's operator changes
 *   version by 7, naming that node.
 */
export function gradientOpset(graph: GraphProto, opset: number): number {
  if (opset >= MIN_GRADIENT_OPSET) return opset;
  const hit = changedNode(graph, opset, MIN_GRADIENT_OPSET);
  if (hit) {
    const why =
      hit.before === undefined
        ? `its operator '${hit.op}' has no version at opset ${opset} known to the raise check`
        : `'${hit.op}' resolves to version ${hit.before} at opset ${opset} but to version ${hit.after} at opset ${MIN_GRADIENT_OPSET}`;
    throw new PeanutError(
      'E_UNSUPPORTED_OP',
      `gradient graphs need default-domain opset ${MIN_GRADIENT_OPSET} or newer; the model imports opset ${opset}, and raising its import would change node '${hit.name}' (${why}). ` +
        `Fix: re-export the model with opset ${MIN_GRADIENT_OPSET} or newer.`,
    );
  }
  return MIN_GRADIENT_OPSET;
}
