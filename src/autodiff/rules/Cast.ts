/**
 * Cast between floating types: dX = Cast(dY, to = type of X). A Cast to or from a non-float type
 * is a stop-gradient edge (the builder never reaches it: non-float values carry no gradient).
 */
import type { GradRule } from '../rule.ts';

export const castGrad: GradRule = {
  opType: 'Cast',
  grad(ctx) {
    const dY = ctx.dY;
    const from = ctx.dtype(ctx.I(0));
    return [from === ctx.dtype(ctx.O(0)) ? dY : ctx.b.op('Cast', [dY], { to: from })];
  },
};
