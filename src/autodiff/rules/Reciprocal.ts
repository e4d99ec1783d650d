/** Reciprocal: Y = 1/X;  dX = -dY · Y². */
import type { GradRule } from '../rule.ts';

export const reciprocalGrad: GradRule = {
  opType: 'Reciprocal',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const y = ctx.O(0);
    return [b.op('Neg', [b.op('Mul', [dY, b.op('Mul', [y, y])])])];
  },
};
