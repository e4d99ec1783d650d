/**
 * Div: Y = A / B (broadcasting).
 *   dA = unbroadcast(dY / B, A)
 *   dB = unbroadcast(-dY * Y / B, B)        (= -dY * A / B²)
 */
import type { GradRule } from '../rule.ts';

export const divGrad: GradRule = {
  opType: 'Div',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const { b } = ctx;
    const dA = ctx.needsGrad(0) ? ctx.unbroadcast(b.op('Div', [dY, ctx.I(1)]), ctx.I(0)) : undefined;
    const dB = ctx.needsGrad(1) ? b.op('Neg', [ctx.unbroadcast(b.op('Div', [b.op('Mul', [dY, ctx.O(0)]), ctx.I(1)]), ctx.I(1))]) : undefined;
    return [dA, dB];
  },
};
