/** Sqrt: Y = √X;  dX = dY · 0.5 / Y. */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const sqrtGrad: GradRule = {
  opType: 'Sqrt',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    return [b.op('Div', [b.op('Mul', [dY, scalarOf(ctx, 0.5, ctx.dtype(ctx.I(0)))]), ctx.O(0)])];
  },
};
