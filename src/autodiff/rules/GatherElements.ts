/**
 * GatherElements (indices, input 1, are a stop-gradient edge): out[…i_axis…] =
 * data[…indices[…]…], so the data gradient adds dY into zeros at the same positions.
 * - Opset ≥ 16: ScatterElements(zeros, indices, dY, axis, reduction='add') (negative indices
 *   are allowed there).
 * - Before 16 (no reduction attribute): one-hot the indices along a new last axis,
 *   oh[…, k, …, j] = (indices[…, k, …] == j), sum dY·oh over the gathered axis and move the
 *   new axis into its place. Needs indices' other dims equal to data's.
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { normAxis, oneHot, reduce, unsqueeze } from '../ops.ts';
import { dimOf, shapeOf } from '../shape-helpers.ts';
import { scatterAddToZeros } from './Gather.ts';

export const gatherElementsGrad: GradRule = {
  opType: 'GatherElements',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const b = ctx.b;
    const data = ctx.I(0);
    const dt = ctx.dtype(data);
    const r = ctx.rank(data);
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), r);
    if (ctx.opset >= 16) {
      return [scatterAddToZeros(ctx, 'ScatterElements', shapeOf(ctx, data), ctx.I(1), dY, dt, { axis })];
    }
    const hot = oneHot(ctx, b.op('Cast', [ctx.I(1)], { to: DT.INT64 }), dimOf(ctx, data, axis), dt);
    const weighted = b.op('Mul', [hot, unsqueeze(ctx, dY, [r])]); // indices.shape + [D]
    const summed = reduce(ctx, 'ReduceSum', weighted, [axis], 1); // 1 at axis, D last
    const perm = Array.from({ length: r + 1 }, (_, i) => i);
    perm[axis] = r;
    perm[r] = axis;
    const moved = b.op('Transpose', [summed], { perm });
    return [b.op('Reshape', [moved, shapeOf(ctx, data)])];
  },
};
