/**
 * ReduceLogSum: Y = log Σ X, so dX = dYk / exp(Yk) (= dYk / Σ X). Yk, dYk: Y and dY with the
 * reduced axes kept. Axes: attribute before opset 18, input 1 from 18.
 */
import type { GradRule } from '../rule.ts';
import { expandReduced, keepdimsGrad, reduceAxes, reducedAxisList } from './shared/helpers.ts';

export const reduceLogSumGrad: GradRule = {
  opType: 'ReduceLogSum',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const axes = reduceAxes(ctx);
    const share = b.op('Div', [keepdimsGrad(ctx, dY, axes), b.op('Exp', [keepdimsGrad(ctx, ctx.O(0), axes)])]);
    return [expandReduced(ctx, share, reducedAxisList(axes, ctx.rank(ctx.I(0))))];
  },
};
