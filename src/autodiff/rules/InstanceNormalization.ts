/**
 * InstanceNormalization: each (n, c) slice is normalised over the spatial axes, then scaled and
 * shifted per channel. With x̂ = (X − mean)·inv, inv = 1/√(var + ε), g = dY·γ[c] (means over the
 * spatial axes):
 *   dX = inv·(g − mean(g) − x̂·mean(g·x̂)),  dγ = Σ_{n,spatial} dY·x̂,  dβ = Σ_{n,spatial} dY
 */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { reduce, unsqueeze } from '../../onnx/ops.ts';
import { normalize, normalizedGrad } from './shared/normalization.ts';

export const instanceNormalizationGrad: GradRule = {
  opType: 'InstanceNormalization',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    const r = ctx.rank(x);
    const dt = ctx.dtype(x);
    const spatial = Array.from({ length: r - 2 }, (_, i) => i + 2);
    const s = normalize(ctx, x, spatial, attrFloat(ctx.node, 'epsilon', 1e-5), dt);
    const xhat = s.xhat;
    const perChannel = (v: string) => unsqueeze(ctx, v, Array.from({ length: r - 2 }, (_, i) => i + 1));
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) {
      out[0] = normalizedGrad(ctx, s, b.op('Mul', [dY, perChannel(ctx.I(1))]));
    }
    if (ctx.needsGrad(1)) out[1] = reduce(ctx, 'ReduceSum', b.op('Mul', [dY, xhat]), [0, ...spatial], 0);
    if (ctx.needsGrad(2)) out[2] = reduce(ctx, 'ReduceSum', dY, [0, ...spatial], 0);
    return out;
  },
};
