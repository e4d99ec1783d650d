/** Softplus: Y = ln(1 + eˣ);  dX = dY · σ(X). */
import type { GradRule } from '../rule.ts';

export const softplusGrad: GradRule = {
  opType: 'Softplus',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [ctx.b.op('Mul', [dY, ctx.b.op('Sigmoid', [ctx.I(0)])])];
  },
};
