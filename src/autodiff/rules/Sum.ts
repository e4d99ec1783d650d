/** Sum (variadic, broadcasting): dXᵢ = dY summed down to Xᵢ's shape. */
import type { GradRule } from '../rule.ts';

export const sumGrad: GradRule = {
  opType: 'Sum',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    return Array.from({ length: ctx.inputCount }, (_, i) => (ctx.needsGrad(i) ? ctx.unbroadcast(dY, ctx.I(i)) : undefined));
  },
};
