/** Celu: Y = max(0, X) + min(0, α(e^(X/α) − 1));  dX = dY · (X > 0 ? 1 : e^(X/α)). */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf } from '../ops.ts';

export const celuGrad: GradRule = {
  opType: 'Celu',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const e = b.op('Exp', [b.op('Div', [x, scalarOf(ctx, alpha, dt)])]);
    const local = b.op('Where', [b.op('Greater', [x, scalarOf(ctx, 0, dt)]), scalarOf(ctx, 1, dt), e]);
    return [b.op('Mul', [dY, local])];
  },
};
