/**
 * Expand: dX = dY summed over the axes X was broadcast along (the target shape, input 1, is a
 * stop-gradient edge).
 */
import type { GradRule } from '../rule.ts';

export const expandGrad: GradRule = {
  opType: 'Expand',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    return [ctx.unbroadcast(dY, ctx.I(0))];
  },
};
