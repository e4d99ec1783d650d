/** Neg: Y = -X;  dX = -dY. */
import type { GradRule } from '../rule.ts';

export const negGrad: GradRule = {
  opType: 'Neg',
  grad(ctx) {
    const dY = ctx.dY;
    return [ctx.b.op('Neg', [dY])];
  },
};
