/** Elu: Y = X if X > 0 else α(eˣ − 1);  dX = dY where X > 0, else dY · (Y + α). */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf } from '../ops.ts';

export const eluGrad: GradRule = {
  opType: 'Elu',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const neg = b.op('Add', [ctx.O(0), scalarOf(ctx, alpha, dt)]);
    const local = b.op('Where', [b.op('Greater', [x, scalarOf(ctx, 0, dt)]), scalarOf(ctx, 1, dt), neg]);
    return [b.op('Mul', [dY, local])];
  },
};
