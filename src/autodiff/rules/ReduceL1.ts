/**
 * ReduceL1: Y = Σ |X|, so dX = sign(X)·dYk (0 at X = 0). dYk: dY with the reduced axes kept.
 * Axes: attribute before opset 18, input 1 from 18.
 */
import type { GradRule } from '../rule.ts';
import { keepdimsGrad, reduceAxes } from './shared/helpers.ts';
import { sign } from '../../onnx/ops.ts';

export const reduceL1Grad: GradRule = {
  opType: 'ReduceL1',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const x = ctx.I(0);
    return [ctx.b.op('Mul', [sign(ctx, x, ctx.dtype(x)), keepdimsGrad(ctx, dY, reduceAxes(ctx))])];
  },
};
