/**
 * GatherElements (indices, input 1, are a stop-gradient edge): out[…i_axis…] =
 * data[…indices[…]…], so the data gradient adds dY into zeros at the same positions.
 * - Opset ≥ 16: ScatterElements(zeros, indices, dY, axis, reduction='add') (negative indices
 *   are allowed there).
 * - Before 16 (no reduction attribute): one-hot the indices along a new last axis,
 *   oh[…, k, …, j] = (indices[…, k, …] == j), sum dY·oh over the gathered axis and move the
 *   new axis into its place. Needs indices' other dims equal to data's.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { normAxis, oneHot, reduce, unsqueeze } from '../../onnx/ops.ts';
import { dimPiece, shapeOf } from './shared/helpers.ts';
import { scatterAddToZeros } from './Gather.ts';

export const gatherElementsGrad: GradRule = {
  opType: 'GatherElements',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const data = ctx.I(0);
    const dt = ctx.dtype(data);
    const r = ctx.rank(data);
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), r);
    if (ctx.opset >= 16) {
      return [scatterAddToZeros(ctx, 'ScatterElements', shapeOf(ctx, data), ctx.I(1), dY, dt, { axis })];
    }
    return [oneHotScatterAdd(ctx, data, ctx.I(1), dY, axis)];
  },
};

/**
 * `updates` (shaped like `indices`) added into zeros shaped like forward value `data` at
 * `indices` along `axis`, without a scatter op: one-hot the indices along a new last axis,
 * oh[…, k, …, j] = (indices[…, k, …] == j), sum updates·oh over `axis` and move the new axis
 * into its place. Indices' other dims must equal data's. Valid at every opset from 7 (the
 * one-hot needs a static dim along `axis` before 9).
 */
export function oneHotScatterAdd(ctx: GradContext, data: string, indices: string, updates: string, axis: number): string {
  const b = ctx.b;
  const dt = ctx.dtype(data);
  const r = ctx.rank(data);
  const hot = oneHot(ctx, b.op('Cast', [indices], { to: DT.INT64 }), dimPiece(ctx, data, axis), dt);
  const weighted = b.op('Mul', [hot, unsqueeze(ctx, updates, [r])]); // indices.shape + [D]
  const summed = reduce(ctx, 'ReduceSum', weighted, [axis], 1); // 1 at axis, D last
  const perm = Array.from({ length: r + 1 }, (_, i) => i);
  perm[axis] = r;
  perm[r] = axis;
  const moved = b.op('Transpose', [summed], { perm });
  return b.op('Reshape', [moved, shapeOf(ctx, data)]);
}
