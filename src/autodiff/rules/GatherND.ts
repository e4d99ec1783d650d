/**
 * GatherND (indices, input 1, are a stop-gradient edge). With b = batch_dims and k the last dim
 * of indices, dY has shape indices.shape[:-1] + data.shape[b+k:]; the data gradient adds each
 * slice of dY at its index tuple. The tuples are made explicit first: negative entries wrapped
 * by +D, and for b > 0 the batch coordinates prepended (Range over each batch dim, expanded),
 * giving full tuples of length m = b + k. Then:
 * - opset ≥ 16: ScatterND(zeros, tuples, dY, reduction='add');
 * - before 16 (ScatterND cannot add repeated tuples): linear index Σ tupleⱼ·strideⱼ,
 *   OneHot(linear, Π D[:m])ᵀ · dY as one MatMul ([P, N] · [N, rest]), reshaped to data.
 * k must be static (it always is in exported graphs).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { dimOf, dimPiece, dimsOf, shapeOf, unsupported } from './shared/helpers.ts';
import { oneHotRowSum, scatterAddToZeros, wrapNegative } from './Gather.ts';

export const gatherNDGrad: GradRule = {
  opType: 'GatherND',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const data = ctx.I(0);
    const r = ctx.rank(data);
    const bd = attrInt(ctx.node, 'batch_dims', 0);
    const idxShape = ctx.shape(ctx.I(1));
    const q = idxShape.length;
    const k = idxShape[q - 1];
    if (typeof k !== 'number') unsupported(ctx, 'the last dim of indices must be static');
    const m = bd + k;
    const tuples = fullTuples(ctx, bd, k, q);
    if (ctx.opset >= 16) {
      return [scatterAddToZeros(ctx, 'ScatterND', shapeOf(ctx, data), tuples, dY, ctx.dtype(data))];
    }

    // Linear index over data's first m axes.
    const strides: Array<number | string> = new Array(m);
    let acc: number | string = 1;
    for (let j = m - 1; j >= 0; j--) {
      strides[j] = acc;
      const dj = dimPiece(ctx, data, j);
      acc = typeof acc === 'number' && typeof dj === 'number' ? acc * dj : b.op('Mul', [typeof acc === 'number' ? b.constInt64([acc]) : acc, typeof dj === 'number' ? b.constInt64([dj]) : dj]);
    }
    const P = typeof acc === 'number' ? b.constInt64([acc]) : acc;
    let linear: string | undefined;
    for (let j = 0; j < m; j++) {
      const coord = b.op('Gather', [tuples, b.constInt64([j], [])], { axis: q - 1 });
      const s = strides[j]!;
      const term = s === 1 ? coord : b.op('Mul', [coord, typeof s === 'number' ? b.constInt64([s], []) : b.op('Reshape', [s, b.constInt64([], [0])])]);
      linear = linear ? b.op('Add', [linear, term]) : term;
    }
    const rest = Array.from({ length: r - m }, (_, i) => m + i);
    const summed = oneHotRowSum(ctx, linear!, P, dY, dimsOf(ctx, data, rest), ctx.dtype(data)); // [P, Π rest]
    return [b.op('Reshape', [summed, shapeOf(ctx, data)])];
  },
};

/** Index tuples of length batch_dims + k: negatives wrapped, batch coordinates prepended. */
function fullTuples(ctx: GradContext, bd: number, k: number, q: number): string {
  const b = ctx.b;
  const data = ctx.I(0);
  const idx = b.op('Cast', [ctx.I(1)], { to: DT.INT64 });
  const dims = dimsOf(ctx, data, Array.from({ length: k }, (_, i) => bd + i)); // [k], broadcasts on the last axis
  const wrapped = wrapNegative(ctx, idx, dims);
  if (bd === 0) return wrapped;
  const lead = b.op('Slice', [shapeOf(ctx, ctx.I(1)), b.constInt64([0]), b.constInt64([q - 1])]);
  const coordShape = b.op('Concat', [lead, b.constInt64([1])], { axis: 0 });
  const coords: string[] = [];
  for (let j = 0; j < bd; j++) {
    const dj = b.op('Reshape', [dimOf(ctx, data, j), b.constInt64([], [0])]);
    const range = b.op('Range', [b.constInt64([0], []), dj, b.constInt64([1], [])]);
    const target = Array.from({ length: q }, (_, i) => (i === j ? -1 : 1));
    coords.push(b.op('Expand', [b.op('Reshape', [range, b.constInt64(target)]), coordShape]));
  }
  return b.op('Concat', [...coords, wrapped], { axis: -1 });
}
