/** Tanh: dX = dY · (1 − Y²). */
import { scalarOf } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const tanhGrad = elementwiseRule('Tanh', (ctx, _x, dt) => {
  const y = ctx.O(0);
  return ctx.b.op('Sub', [scalarOf(ctx, 1, dt), ctx.b.op('Mul', [y, y])]);
});

