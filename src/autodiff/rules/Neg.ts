/** Neg: Y = -X;  dX = -dY. */
import type { GradRule } from '../rule.ts';

export const negGrad: GradRule = {
  opType: 'Neg',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [ctx.b.op('Neg', [dY])];
  },
};
