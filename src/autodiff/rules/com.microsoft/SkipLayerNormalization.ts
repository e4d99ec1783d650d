/**
 * com.microsoft SkipLayerNormalization and SkipSimplifiedLayerNormalization (ONNX Runtime's
 * fusion of the residual Add with the LayerNorm / RMSNorm after it in BERT, GPT-2 and LLaMA
 * graphs), over the last axis:
 *   S = input + skip (+ bias)        skip [B, S, H], [1, S, H] or [S, H]; bias [H]
 *   Y = norm(S)·γ (+ β)              norm: standard (Skip…) or RMS (SkipSimplified…)
 * Inputs: input, skip, gamma, then beta?, bias? (SkipLayerNormalization) or bias?
 * (SkipSimplifiedLayerNormalization). Outputs: Y, mean?, inv_std_var? (float32), and
 * input_skip_bias_sum? = S, which ORT-fused graphs feed into the next residual, so its gradient
 * dS₂ is added:
 *   dS = normGrad(dY, dmean, dinv) + dS₂       (normalization.ts, `trailingNormGrads`)
 *   dinput = dS,  dskip = unbroadcast(dS, skip),  dbias = Σ dS,  dγ = Σ dY·x̂,  dβ = Σ dY
 * S is read from input_skip_bias_sum when the node outputs it, else recomputed. The simplified
 * op's mean output is never computed (ONNX Runtime writes zeros there), so it carries no
 * gradient. epsilon defaults to 1e-12 (the contrib schema's default); half inputs are
 * normalised in float32, as the kernels do.
 */
import type { GradContext, GradRule } from '../../rule.ts';
import { attrFloat } from '../../../onnx/attributes.ts';
import { trailingNormGrads, type NormKind } from '../shared/normalization.ts';
import { hasInput, optionalGO } from '../shared/helpers.ts';

const MS = 'com.microsoft';
const DEFAULT_EPSILON = 1e-12;

function skipNormGrad(ctx: GradContext, kind: NormKind): Array<string | undefined> {
  const b = ctx.b;
  const dY = ctx.GO(0);
  const dMean = kind === 'standard' ? optionalGO(ctx, 1) : undefined;
  const dInvStd = optionalGO(ctx, 2);
  const dSum = optionalGO(ctx, 3);
  if (!dY && !dMean && !dInvStd && !dSum) return [];
  const [betaAt, biasAt] = kind === 'standard' ? [3, 4] : [-1, 3];
  const beta = betaAt > 0 && hasInput(ctx, betaAt) ? ctx.I(betaAt) : undefined;
  const bias = hasInput(ctx, biasAt) ? ctx.I(biasAt) : undefined;
  const needSum = ctx.needsGrad(0) || ctx.needsGrad(1) || (!!bias && ctx.needsGrad(biasAt));
  const input = ctx.I(0);
  let sum = ctx.node.output[3];
  if (!sum) {
    const s = b.op('Add', [input, ctx.I(1)]);
    sum = bias ? b.op('Add', [s, bias]) : s;
  }
  const r = trailingNormGrads(ctx, {
    x: sum,
    like: input,
    axis: ctx.rank(input) - 1,
    eps: attrFloat(ctx.node, 'epsilon', DEFAULT_EPSILON),
    kind,
    float32ForHalf: true,
    scale: ctx.I(2),
    ...(beta ? { bias: beta } : {}),
    ...(dY ? { dY } : {}),
    ...(dMean ? { dMean } : {}),
    ...(dInvStd ? { dInvStd } : {}),
    need: { x: needSum, scale: ctx.needsGrad(2), bias: !!beta && ctx.needsGrad(betaAt) },
  });
  const dS = r.dX && dSum ? b.op('Add', [r.dX, dSum]) : (r.dX ?? dSum);
  const out: Array<string | undefined> = [];
  if (dS) {
    if (ctx.needsGrad(0)) out[0] = ctx.unbroadcast(dS, input);
    if (ctx.needsGrad(1)) out[1] = ctx.unbroadcast(dS, ctx.I(1));
    if (bias && ctx.needsGrad(biasAt)) out[biasAt] = ctx.unbroadcast(dS, bias);
  }
  out[2] = r.dScale;
  if (beta) out[betaAt] = r.dBias;
  return out;
}

export const skipLayerNormalizationGrad: GradRule = { opType: 'SkipLayerNormalization', domain: MS, grad: (ctx) => skipNormGrad(ctx, 'standard') };
export const skipSimplifiedLayerNormalizationGrad: GradRule = {
  opType: 'SkipSimplifiedLayerNormalization',
  domain: MS,
  grad: (ctx) => skipNormGrad(ctx, 'rms'),
};
