/** Sin: dX = dY · cos(X). */
import type { GradRule } from '../rule.ts';

export const sinGrad: GradRule = {
  opType: 'Sin',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [ctx.b.op('Mul', [dY, ctx.b.op('Cos', [ctx.I(0)])])];
  },
};
