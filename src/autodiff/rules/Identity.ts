/** Identity: dX = dY. */
import type { GradRule } from '../rule.ts';

export const identityGrad: GradRule = {
  opType: 'Identity',
  grad(ctx) {
    const dY = ctx.dY;
    return [dY];
  },
};
