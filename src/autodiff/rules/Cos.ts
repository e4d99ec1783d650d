/** Cos: dX = −dY · sin(X). */
import type { GradRule } from '../rule.ts';

export const cosGrad: GradRule = {
  opType: 'Cos',
  grad(ctx) {
    const dY = ctx.dY;
    return [ctx.b.op('Neg', [ctx.b.op('Mul', [dY, ctx.b.op('Sin', [ctx.I(0)])])])];
  },
};
