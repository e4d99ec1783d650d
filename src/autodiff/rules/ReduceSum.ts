/**
 * ReduceSum: every reduced element receives the output gradient.
 *   dX = Expand(keepdims ? dY : Unsqueeze(dY, axes), Shape(X))
 * Axes are an attribute before opset 13 and input 1 from 13 (a stop-gradient edge).
 */
import type { GradRule } from '../rule.ts';
import { keepdimsGrad, reduceAxes, shapeOf } from './shared/helpers.ts';
import { expandTo } from '../../onnx/ops.ts';

export const reduceSumGrad: GradRule = {
  opType: 'ReduceSum',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const axes = reduceAxes(ctx);
    if (axes.kind === 'none') return [dY];
    return [expandTo(ctx, keepdimsGrad(ctx, dY, axes), shapeOf(ctx, ctx.I(0)), ctx.rank(ctx.I(0)))];
  },
};
