/**
 * ReduceL2: Y = √(Σ X²), so dX = X·dYk / Yk, taken as 0 where Yk = 0 (PyTorch's choice for the
 * norm at zero). Yk, dYk: Y and dY with the reduced axes kept. Axes: attribute < 18, input ≥ 18.
 */
import type { GradRule } from '../rule.ts';
import { equalFloat, scalarOf, select } from '../../onnx/ops.ts';
import { keepdimsGrad, reduceAxes } from './shared/helpers.ts';

export const reduceL2Grad: GradRule = {
  opType: 'ReduceL2',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const axes = reduceAxes(ctx);
    const yk = keepdimsGrad(ctx, ctx.O(0), axes);
    const zero = scalarOf(ctx, 0, dt);
    const isZero = equalFloat(ctx, yk, zero);
    // Divide by 1 where the norm is 0, then zero those entries: no 0/0 is ever formed.
    const safe = select(ctx, isZero, scalarOf(ctx, 1, dt), yk, dt);
    const ratio = select(ctx, isZero, zero, b.op('Div', [keepdimsGrad(ctx, dY, axes), safe]), dt);
    return [b.op('Mul', [x, ratio])];
  },
};
