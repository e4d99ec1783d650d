/**
 * RMSNormalization (opset 23) over the axes [axis, rank), then a scale broadcast to X:
 *   inv = 1/√(mean(X²) + ε),  x̂ = X·inv,  Y = x̂·γ,  g = dY·γ
 *   dX = inv·(g − x̂·mean(g·x̂)),  dγ = Σ dY·x̂ (summed down to γ's shape)
 * With stash_type=1 (the default) and a half-precision X, the arithmetic runs in float32.
 * ONNX Runtime's SimplifiedLayerNormalization (the same computation in the default domain, with
 * an optional inv_std_var output) shares this body (`rmsNormGrad`); the math is the RMS form of
 * normalization.ts.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attributeNormGrads } from './shared/normalization.ts';
import { optionalGO } from './shared/helpers.ts';

/** Gradient rule body of RMSNormalization and SimplifiedLayerNormalization (X, scale → Y, inv?). */
export function rmsNormGrad(ctx: GradContext): Array<string | undefined> {
  const dY = ctx.GO(0);
  const dInvStd = optionalGO(ctx, 1);
  if (!dY && !dInvStd) return [];
  const r = attributeNormGrads(ctx, 'rms', {
    scale: ctx.I(1),
    ...(dY ? { dY } : {}),
    ...(dInvStd ? { dInvStd } : {}),
    need: { x: ctx.needsGrad(0), scale: ctx.needsGrad(1), bias: false },
  });
  return [r.dX, r.dScale];
}

export const rmsNormalizationGrad: GradRule = { opType: 'RMSNormalization', grad: rmsNormGrad };
