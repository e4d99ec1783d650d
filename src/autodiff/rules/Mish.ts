/** Mish: Y = X · tanh(softplus(X));  dX = dY · (t + X · σ(X) · (1 − t²)), t = tanh(softplus(X)). */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../ops.ts';

export const mishGrad: GradRule = {
  opType: 'Mish',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const t = b.op('Tanh', [b.op('Softplus', [x])]);
    const one = scalarOf(ctx, 1, ctx.dtype(x));
    const local = b.op('Add', [t, b.op('Mul', [b.op('Mul', [x, b.op('Sigmoid', [x])]), b.op('Sub', [one, b.op('Mul', [t, t])])])]);
    return [b.op('Mul', [dY, local])];
  },
};
