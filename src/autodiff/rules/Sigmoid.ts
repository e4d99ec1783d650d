/** Sigmoid: dX = dY · Y · (1 − Y). */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const sigmoidGrad: GradRule = {
  opType: 'Sigmoid',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const y = ctx.O(0);
    const one = scalarOf(ctx, 1, ctx.dtype(y));
    return [b.op('Mul', [b.op('Mul', [dY, y]), b.op('Sub', [one, y])])];
  },
};
