/**
 * GlobalAveragePool: ReduceMean over the spatial axes with keepdims (see ReduceMean.ts), so
 * dX = Expand(dY, Shape(X)) / n with n the spatial size (a constant when static, else
 * Size(X) / Size(Y) at run time).
 */
import type { GradRule } from '../rule.ts';
import { meanGrad } from './ReduceMean.ts';

export const globalAveragePoolGrad: GradRule = {
  opType: 'GlobalAveragePool',
  grad(ctx) {
    const dY = ctx.dY;
    const spatial = Array.from({ length: ctx.rank(ctx.I(0)) - 2 }, (_, i) => i + 2);
    return [meanGrad(ctx, dY, spatial)];
  },
};
