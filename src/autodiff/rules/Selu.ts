/** Selu: Y = γ·X if X > 0 else γ·α(eˣ − 1);  dX = dY · (X > 0 ? γ : Y + γα). */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf } from '../ops.ts';

export const seluGrad: GradRule = {
  opType: 'Selu',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const alpha = attrFloat(ctx.node, 'alpha', 1.67326319217681884765625);
    const gamma = attrFloat(ctx.node, 'gamma', 1.05070102214813232421875);
    const neg = b.op('Add', [ctx.O(0), scalarOf(ctx, gamma * alpha, dt)]);
    const local = b.op('Where', [b.op('Greater', [x, scalarOf(ctx, 0, dt)]), scalarOf(ctx, gamma, dt), neg]);
    return [b.op('Mul', [dY, local])];
  },
};
