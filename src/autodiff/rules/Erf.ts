/** Erf: dX = dY · (2/√π) · exp(−X²). */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../ops.ts';

export const erfGrad: GradRule = {
  opType: 'Erf',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const e = b.op('Exp', [b.op('Neg', [b.op('Mul', [x, x])])]);
    return [b.op('Mul', [dY, b.op('Mul', [e, scalarOf(ctx, 2 / Math.sqrt(Math.PI), dt)])])];
  },
};
