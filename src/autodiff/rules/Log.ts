/** Log: Y = ln X;  dX = dY / X. */
import type { GradRule } from '../rule.ts';

export const logGrad: GradRule = {
  opType: 'Log',
  grad(ctx) {
    const dY = ctx.dY;
    return [ctx.b.op('Div', [dY, ctx.I(0)])];
  },
};
