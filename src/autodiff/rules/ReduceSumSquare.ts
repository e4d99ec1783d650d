/**
 * ReduceSumSquare: Y = Σ X², so dX = 2·X·dYk (dYk: dY with the reduced axes kept, broadcast
 * back over them). Axes: attribute before opset 18, input 1 from 18.
 */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../../onnx/ops.ts';
import { keepdimsGrad, reduceAxes } from './shared/helpers.ts';

export const reduceSumSquareGrad: GradRule = {
  opType: 'ReduceSumSquare',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const x = ctx.I(0);
    const twoX = b.op('Mul', [x, scalarOf(ctx, 2, ctx.dtype(x))]);
    return [b.op('Mul', [twoX, keepdimsGrad(ctx, dY, reduceAxes(ctx))])];
  },
};
