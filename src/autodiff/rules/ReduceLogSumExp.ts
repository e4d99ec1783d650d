/**
 * ReduceLogSumExp: Y = log Σ exp(X), so dX = dYk · exp(X − Yk) (the softmax over the reduced
 * axes). Yk, dYk: Y and dY with the reduced axes kept. Axes: attribute < 18, input ≥ 18.
 */
import type { GradRule } from '../rule.ts';
import { keepdimsGrad, reduceAxes } from './shared/helpers.ts';

export const reduceLogSumExpGrad: GradRule = {
  opType: 'ReduceLogSumExp',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const axes = reduceAxes(ctx);
    const softmax = b.op('Exp', [b.op('Sub', [ctx.I(0), keepdimsGrad(ctx, ctx.O(0), axes)])]);
    return [b.op('Mul', [softmax, keepdimsGrad(ctx, dY, axes)])];
  },
};
