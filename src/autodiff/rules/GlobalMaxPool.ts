/**
 * GlobalMaxPool: ReduceMax over the spatial axes with keepdims, so the gradient goes to the
 * spatial positions equal to the maximum, shared evenly among ties (see ReduceMax.ts):
 * mask = Equal(X, Y), dX = dY · mask / Σ_spatial mask.
 */
import type { GradRule } from '../rule.ts';
import { tiedShare } from './ReduceMax.ts';

export const globalMaxPoolGrad: GradRule = {
  opType: 'GlobalMaxPool',
  grad(ctx) {
    const dY = ctx.dY;
    const x = ctx.I(0);
    const spatial = Array.from({ length: ctx.rank(x) - 2 }, (_, i) => i + 2);
    return [tiedShare(ctx, x, ctx.O(0), dY, spatial)];
  },
};
