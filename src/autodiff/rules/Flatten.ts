/**
 * Flatten: dX = Reshape(dY, Shape(X)).
 * The shape is a constant when probing found X fully static, else Shape(X) at run time.
 */
import type { GradRule } from '../rule.ts';
import { reshapeLike } from '../shape-helpers.ts';

export const flattenGrad: GradRule = {
  opType: 'Flatten',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [reshapeLike(ctx, dY, ctx.I(0))];
  },
};
