/**
 * GlobalAveragePool: Y[n,c] = mean of X[n,c,…] over the spatial axes, so
 * dX = Expand(dY, Shape(X)) / n with n the spatial size (a constant when static, else
 * Size(X) / Size(Y) at run time).
 */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../ops.ts';
import { shapeOf } from '../shape-helpers.ts';

export const globalAveragePoolGrad: GradRule = {
  opType: 'GlobalAveragePool',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const expanded = b.op('Expand', [dY, shapeOf(ctx, x)]);
    const spatial = ctx.shape(x).slice(2);
    if (spatial.every((d) => typeof d === 'number')) {
      const n = (spatial as number[]).reduce((p, d) => p * d, 1);
      return [n === 1 ? expanded : b.op('Mul', [expanded, scalarOf(ctx, 1 / n, dt)])];
    }
    const count = b.op('Div', [b.op('Size', [x]), b.op('Size', [ctx.O(0)])]);
    return [b.op('Div', [expanded, b.op('Cast', [count], { to: dt })])];
  },
};
