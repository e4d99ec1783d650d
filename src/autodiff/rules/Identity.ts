/** Identity: dX = dY. */
import type { GradRule } from '../rule.ts';

export const identityGrad: GradRule = {
  opType: 'Identity',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [dY];
  },
};
