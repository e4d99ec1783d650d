/**
 * Mul: Y = A * B (broadcasting).
 *   dA = unbroadcast(dY * B, A)    dB = unbroadcast(dY * A, B)
 */
import type { GradRule } from '../rule.ts';

export const mulGrad: GradRule = {
  opType: 'Mul',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const { b } = ctx;
    return [
      ctx.needsGrad(0) ? ctx.unbroadcast(b.op('Mul', [dY, ctx.I(1)]), ctx.I(0)) : undefined,
      ctx.needsGrad(1) ? ctx.unbroadcast(b.op('Mul', [dY, ctx.I(0)]), ctx.I(1)) : undefined,
    ];
  },
};
