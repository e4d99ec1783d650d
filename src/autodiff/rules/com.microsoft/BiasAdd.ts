/**
 * com.microsoft BiasAdd (Stable Diffusion UNet fusions): Y = X + bias + skip, X and skip
 * [N, S, C], bias [C]; no attributes.
 *   dX = dY,  dskip = dY,  dbias = Σ_{N,S} dY      (each summed down to its input's shape)
 */
import type { GradRule } from '../../rule.ts';

export const biasAddGrad: GradRule = {
  opType: 'BiasAdd',
  domain: 'com.microsoft',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    return [0, 1, 2].map((i) => (ctx.needsGrad(i) ? ctx.unbroadcast(dY, ctx.I(i)) : undefined));
  },
};
