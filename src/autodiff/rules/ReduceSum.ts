/**
 * ReduceSum: every reduced element receives the output gradient.
 *   dX = Expand(keepdims ? dY : Unsqueeze(dY, axes), X's shape) (see expandReduced)
 * Axes are an attribute before opset 13 and input 1 from 13 (a stop-gradient edge).
 */
import type { GradRule } from '../rule.ts';
import { expandReduced, keepdimsGrad, reduceAxes, reducedAxisList } from './shared/helpers.ts';

export const reduceSumGrad: GradRule = {
  opType: 'ReduceSum',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const axes = reduceAxes(ctx);
    if (axes.kind === 'none') return [dY];
    return [expandReduced(ctx, keepdimsGrad(ctx, dY, axes), reducedAxisList(axes, ctx.rank(ctx.I(0))))];
  },
};
