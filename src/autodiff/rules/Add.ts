/**
 * Add: Y = A + B (broadcasting).
 *   dA = unbroadcast(dY, A)    dB = unbroadcast(dY, B)
 */
import type { GradRule } from '../rule.ts';

export const addGrad: GradRule = {
  opType: 'Add',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    return [ctx.needsGrad(0) ? ctx.unbroadcast(dY, ctx.I(0)) : undefined, ctx.needsGrad(1) ? ctx.unbroadcast(dY, ctx.I(1)) : undefined];
  },
};
