/**
 * Where: Y = cond ? X : Z (broadcasting); cond (input 0) is a stop-gradient edge.
 *   dX = unbroadcast(Where(cond, dY, 0), X)    dZ = unbroadcast(Where(cond, 0, dY), Z)
 */
import type { GradRule } from '../rule.ts';
import { maskGrad } from '../../onnx/ops.ts';

export const whereGrad: GradRule = {
  opType: 'Where',
  differentiableInputs: [1, 2],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const dt = ctx.dtype(ctx.O(0));
    return [
      undefined,
      ctx.needsGrad(1) ? ctx.unbroadcast(maskGrad(ctx, ctx.I(0), dY, dt, true), ctx.I(1)) : undefined,
      ctx.needsGrad(2) ? ctx.unbroadcast(maskGrad(ctx, ctx.I(0), dY, dt, false), ctx.I(2)) : undefined,
    ];
  },
};
