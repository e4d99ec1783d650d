/**
 * Concat: dY is split back along the concatenation axis into pieces the sizes of the inputs
 * (constants where static, Shape(Xi)[axis] where dynamic).
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { normAxis } from '../../onnx/ops.ts';
import { dimPiece, split } from './shared/helpers.ts';

export const concatGrad: GradRule = {
  opType: 'Concat',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const n = ctx.inputCount;
    const needed = Array.from({ length: n }, (_, i) => ctx.needsGrad(i));
    if (!needed.some(Boolean)) return [];
    if (n === 1) return [dY];
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), ctx.rank(ctx.O(0)));
    const sizes = Array.from({ length: n }, (_, i) => dimPiece(ctx, ctx.I(i), axis));
    const parts = split(ctx, dY, axis, sizes);
    return parts.map((p, i) => (needed[i] ? p : undefined));
  },
};
