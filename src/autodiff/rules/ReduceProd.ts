/**
 * ReduceProd: dXᵢ = dYk · Π_{j≠i} Xⱼ over each reduced group, computed without dividing by zero.
 * With P = the product of the group's non-zero entries and z = its number of zeros:
 *   z = 0: dXᵢ = dYk · P / Xᵢ
 *   z = 1: dXᵢ = dYk · P at the zero, 0 elsewhere
 *   z ≥ 2: dXᵢ = 0
 * Axes: attribute before opset 18, input 1 from 18.
 */
import type { GradRule } from '../rule.ts';
import { equalFloat, reduce, scalarOf, select } from '../../onnx/ops.ts';
import { keepdimsGrad, reduceArg, reduceAxes } from './shared/helpers.ts';

export const reduceProdGrad: GradRule = {
  opType: 'ReduceProd',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const axes = reduceAxes(ctx);
    const zero = scalarOf(ctx, 0, dt);
    const one = scalarOf(ctx, 1, dt);
    const isZero = equalFloat(ctx, x, zero);
    const safeX = select(ctx, isZero, one, x, dt);
    const p = b.op('Mul', [reduce(ctx, 'ReduceProd', safeX, reduceArg(axes), 1), keepdimsGrad(ctx, dY, axes)]); // dYk · P
    const zeros = reduce(ctx, 'ReduceSum', b.op('Cast', [isZero], { to: dt }), reduceArg(axes), 1);
    const noZero = b.op('Div', [p, safeX]);
    const oneZero = select(ctx, isZero, p, zero, dt);
    const none = equalFloat(ctx, zeros, zero);
    const single = equalFloat(ctx, zeros, one);
    return [select(ctx, none, noZero, select(ctx, single, oneZero, zero, dt), dt)];
  },
};
