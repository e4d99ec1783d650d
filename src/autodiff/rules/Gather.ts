/**
 * Gather (indices, input 1, are a stop-gradient edge). dY has shape
 * pre + indices.shape + post, where data has shape pre + [D] + post. The data gradient adds
 * each slice of dY into row indices[j] of a zero tensor:
 *
 * 1. Move the gathered axis of data to the front: work in the layout [D] + pre + post, and
 *    transpose dY to indices.shape + pre + post.
 * 2. Opset ≥ 16: ScatterND(zeros, Unsqueeze(indices, -1), dYᵀ, reduction='add'), with negative
 *    indices wrapped by +D. Before 16, ScatterND cannot add repeated indices, so use
 *    OneHot(indices, D)ᵀ · dYᵀ as one MatMul ([D, N] · [N, rest]); the one-hot wraps negatives
 *    itself (before opset 9 it is an Equal against a constant range, so D must be static).
 * 3. Transpose back.
 * Scalar indices (rank 0) work the same way (N = 1, no index axes in dY).
 * The scatter-add helpers below serve GatherElements and GatherND too.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { inFloat32, invertPerm, normAxis, oneHot, transpose, unsqueeze, zerosOfShape } from '../../onnx/ops.ts';
import { dimOf, dimPiece, dimsOf } from './shared/helpers.ts';

export const gatherGrad: GradRule = {
  opType: 'Gather',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const data = ctx.I(0);
    const r = ctx.rank(data);
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), r);
    return [gatherDataGrad(ctx, data, ctx.I(1), ctx.rank(ctx.O(0)) - r + 1, dY, axis)];
  },
};

/**
 * The gradient of forward value `data` for Gather(data, indices, axis) reached by dY (shape
 * pre + indices.shape + post): the three steps above. `indices` (any integer type, rank q) may
 * be a backward value (EmbedLayerNormalization's position ids).
 */
export function gatherDataGrad(ctx: GradContext, data: string, indices: string, q: number, dY: string, axis: number): string {
  const b = ctx.b;
  const dt = ctx.dtype(data);
  const r = ctx.rank(data);
  const rest = [...Array(r).keys()].filter((i) => i !== axis);
  const dataPerm = [axis, ...rest];
  const dyPerm = [
    ...Array.from({ length: q }, (_, i) => axis + i),
    ...Array.from({ length: axis }, (_, i) => i),
    ...Array.from({ length: r - 1 - axis }, (_, i) => axis + q + i),
  ];
  const dyT = transpose(ctx, dY, dyPerm);
  const shapeT = dimsOf(ctx, data, dataPerm);
  const idx64 = b.op('Cast', [indices], { to: DT.INT64 });

  let accT: string;
  if (ctx.opset >= 16) {
    const dScalar = b.op('Reshape', [dimOf(ctx, data, axis), b.constInt64([], [0])]); // keeps scalar indices scalar
    const idx = unsqueeze(ctx, wrapNegative(ctx, idx64, dScalar), [-1]);
    accT = scatterAddToZeros(ctx, 'ScatterND', shapeT, idx, dyT, dt);
  } else {
    accT = b.op('Reshape', [oneHotRowSum(ctx, idx64, dimPiece(ctx, data, axis), dyT, dimsOf(ctx, data, rest), dt), shapeT]);
  }
  return transpose(ctx, accT, invertPerm(dataPerm));
}

/** `idx` (int64) with negative entries wrapped by +`bound` (broadcast against idx). */
export function wrapNegative(ctx: GradContext, idx: string, bound: string): string {
  const b = ctx.b;
  return b.op('Where', [b.op('Less', [idx, b.constInt64([0], [])]), b.op('Add', [idx, bound]), idx]);
}

/**
 * `updates` added into zeros of run-time shape `shape` at `indices` (`op` with reduction='add',
 * opset ≥ 16; `attrs` such as axis go with it), in float32 for half types.
 */
export function scatterAddToZeros(ctx: GradContext, op: 'ScatterND' | 'ScatterElements', shape: string, indices: string, updates: string, dt: number, attrs: Record<string, number> = {}): string {
  return inFloat32(ctx, dt, [updates], ([u], ct) => ctx.b.op(op, [zerosOfShape(ctx, shape, ct), indices, u!], { ...attrs, reduction: 'add' }));
}

/**
 * The scatter-add before opset 16, where ScatterND cannot add repeated indices: `rows`
 * (shape indices.shape + rest, the index axes folded into N) summed into `depth` slots by index,
 * as one MatMul OneHot(indices, depth)ᵀ · rows ([depth, N] · [N, Π rest]). `restDims` holds the
 * rest dims. Result [depth, Π rest]. OneHot wraps negative indices itself.
 */
export function oneHotRowSum(ctx: GradContext, indices: string, depth: number | string, rows: string, restDims: string, dt: number): string {
  const b = ctx.b;
  // OneHot needs rank ≥ 1: flatten the indices.
  const hot = oneHot(ctx, b.op('Reshape', [indices, b.constInt64([-1])]), depth, dt); // [N, depth]
  const rowsN = b.op('Reshape', [rows, b.op('Concat', [b.constInt64([-1]), restDims], { axis: 0 })]);
  const rows2 = b.op('Reshape', [rowsN, b.constInt64([0, -1])]); // [N, Π rest]
  return b.op('MatMul', [b.op('Transpose', [hot], { perm: [1, 0] }), rows2]); // [depth, Π rest]
}
