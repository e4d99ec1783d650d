/**
 * Unsqueeze: dX = Reshape(dY, Shape(X)), whatever the axes (attribute before opset 13, input 1
 * from 13, a stop-gradient edge).
 * The shape is a constant when probing found X fully static, else Shape(X) at run time.
 */
import type { GradRule } from '../rule.ts';
import { reshapeLike } from '../shape-helpers.ts';

export const unsqueezeGrad: GradRule = {
  opType: 'Unsqueeze',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    return [reshapeLike(ctx, dY, ctx.I(0))];
  },
};
