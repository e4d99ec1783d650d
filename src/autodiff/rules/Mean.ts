/** Mean (variadic, broadcasting): dXᵢ = (dY / n) summed down to Xᵢ's shape. */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const meanGrad: GradRule = {
  opType: 'Mean',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const n = ctx.inputCount;
    const scaled = n === 1 ? dY : ctx.b.op('Mul', [dY, scalarOf(ctx, 1 / n, ctx.dtype(ctx.O(0)))]);
    return Array.from({ length: n }, (_, i) => (ctx.needsGrad(i) ? ctx.unbroadcast(scaled, ctx.I(i)) : undefined));
  },
};
