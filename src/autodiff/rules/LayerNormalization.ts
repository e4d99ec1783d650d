/**
 * LayerNormalization (opset 17), over the axes [axis, rank). Mean and inverse standard deviation
 * are recomputed from X (the optional Mean/InvStdDev outputs are not relied on):
 *   x̂ = (X − mean)·inv,  inv = 1/√(var + ε),  g = dY·γ
 *   dX = inv·(g − mean(g) − x̂·mean(g·x̂))     (means over the normalised axes)
 *   dγ = Σ dY·x̂,  dβ = Σ dY                     (sums down to γ's / β's shape)
 * Where the optional Mean / InvStdDev outputs are used downstream, their gradients add
 *   dX += (dμ − dσ⁻¹·σ⁻³·(X − μ)) / n      (∂μ/∂X = 1/n, ∂σ⁻¹/∂X = −σ⁻³·(X − μ)/n)
 * with n the number of normalised elements.
 * With stash_type=1 (the default) and a half-precision X, the arithmetic runs in float32.
 * The math is shared with the other normalisations (normalization.ts, `attributeNormGrads`).
 */
import type { GradRule } from '../rule.ts';
import { attributeNormGrads } from './shared/normalization.ts';
import { hasInput, optionalGO } from './shared/helpers.ts';

export const layerNormalizationGrad: GradRule = {
  opType: 'LayerNormalization',
  differentiableInputs: [0, 1, 2],
  grad(ctx) {
    const dY = ctx.GO(0);
    const dMean = optionalGO(ctx, 1);
    const dInvStd = optionalGO(ctx, 2);
    if (!dY && !dMean && !dInvStd) return [];
    const bias = hasInput(ctx, 2) ? ctx.I(2) : undefined;
    const r = attributeNormGrads(ctx, 'standard', {
      scale: ctx.I(1),
      ...(bias ? { bias } : {}),
      ...(dY ? { dY } : {}),
      ...(dMean ? { dMean } : {}),
      ...(dInvStd ? { dInvStd } : {}),
      need: { x: ctx.needsGrad(0), scale: ctx.needsGrad(1), bias: !!bias && ctx.needsGrad(2) },
    });
    return [r.dX, r.dScale, r.dBias];
  },
};
