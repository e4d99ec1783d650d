/** Relu: dX = dY where X > 0, else 0 (PyTorch's choice at 0). */
import type { GradRule } from '../rule.ts';
import { maskGrad, scalarOf } from '../../onnx/ops.ts';

export const reluGrad: GradRule = {
  opType: 'Relu',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const dt = ctx.dtype(ctx.I(0));
    const positive = b.op('Greater', [ctx.I(0), scalarOf(ctx, 0, dt)]);
    return [maskGrad(ctx, positive, dY, dt, true)];
  },
};
