/** Exp: Y = eˣ;  dX = dY · Y. */
import type { GradRule } from '../rule.ts';

export const expGrad: GradRule = {
  opType: 'Exp',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [ctx.b.op('Mul', [dY, ctx.O(0)])];
  },
};
