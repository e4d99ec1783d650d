/** Abs: dX = dY · sign(X) (0 at X = 0, the subgradient PyTorch uses). */
import type { GradRule } from '../rule.ts';
import { sign } from '../../onnx/ops.ts';

export const absGrad: GradRule = {
  opType: 'Abs',
  grad(ctx) {
    const dY = ctx.dY;
    return [ctx.b.op('Mul', [dY, sign(ctx, ctx.I(0), ctx.dtype(ctx.I(0)))])];
  },
};
