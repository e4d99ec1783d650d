/**
 * Transpose: dX = Transpose(dY, perm⁻¹); the default perm reverses the axes.
 */
import type { GradRule } from '../rule.ts';
import { attrInts } from '../../onnx/attributes.ts';
import { invertPerm, transpose } from '../../onnx/ops.ts';

export const transposeGrad: GradRule = {
  opType: 'Transpose',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const rank = ctx.rank(ctx.I(0));
    const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    return [transpose(ctx, dY, invertPerm(perm))];
  },
};
