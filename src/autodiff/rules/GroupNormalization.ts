/**
 * GroupNormalization (opset 18): X [N, C, …] is normalised over each group of C/G channels and
 * the spatial axes, then scaled and shifted. Working in the grouped view Xg = X as [N, G, -1],
 * with x̂ = (Xg − mean)·inv, inv = 1/√(var + ε), and g the gradient reaching x̂:
 *   dXg = inv·(g − mean(g) − x̂·mean(g·x̂))      (means over the last axis)
 * Scale and bias are per group ([G], opsets 18–20: g = dYg·γ[:, None], dγ = Σ dYg·x̂, dβ = Σ dYg)
 * or, from opset 21, per channel ([C]: g = dY·γ[c] regrouped, dγ = Σ dY·x̂, dβ = Σ dY over the
 * batch and spatial axes).
 */
import type { GradRule } from '../rule.ts';
import { attrFloat, attrInt } from '../../onnx/attributes.ts';
import { reduce, unsqueeze } from '../../onnx/ops.ts';
import { reshapeLike } from './shared/helpers.ts';
import { normalize, normalizedGrad } from './shared/normalization.ts';

export const groupNormalizationGrad: GradRule = {
  opType: 'GroupNormalization',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    const r = ctx.rank(x);
    const dt = ctx.dtype(x);
    const groups = attrInt(ctx.node, 'num_groups', 1);
    const perChannel = ctx.opset >= 21;
    const grouped = b.constInt64([0, groups, -1]);
    const xg = b.op('Reshape', [x, grouped]);
    const dYg = b.op('Reshape', [dY, grouped]);
    const s = normalize(ctx, xg, [2], attrFloat(ctx.node, 'epsilon', 1e-5), dt);
    const xhat = s.xhat;
    const spatial = Array.from({ length: r - 2 }, (_, i) => i + 2);
    const channelView = (v: string) => unsqueeze(ctx, v, spatial.map((i) => i - 1)); // [C] -> [C, 1, …]
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) {
      const g = perChannel ? b.op('Reshape', [b.op('Mul', [dY, channelView(ctx.I(1))]), grouped]) : b.op('Mul', [dYg, unsqueeze(ctx, ctx.I(1), [1])]);
      out[0] = reshapeLike(ctx, normalizedGrad(ctx, s, g), x);
    }
    if (ctx.needsGrad(1)) {
      out[1] = perChannel
        ? reduce(ctx, 'ReduceSum', b.op('Mul', [dY, reshapeLike(ctx, xhat, x)]), [0, ...spatial], 0)
        : reduce(ctx, 'ReduceSum', b.op('Mul', [dYg, xhat]), [0, 2], 0);
    }
    if (ctx.needsGrad(2)) out[2] = perChannel ? reduce(ctx, 'ReduceSum', dY, [0, ...spatial], 0) : reduce(ctx, 'ReduceSum', dYg, [0, 2], 0);
    return out;
  },
};
