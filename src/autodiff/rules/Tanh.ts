/** Tanh: dX = dY · (1 − Y²). */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../ops.ts';

export const tanhGrad: GradRule = {
  opType: 'Tanh',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const y = ctx.O(0);
    const one = scalarOf(ctx, 1, ctx.dtype(y));
    return [b.op('Mul', [dY, b.op('Sub', [one, b.op('Mul', [y, y])])])];
  },
};
