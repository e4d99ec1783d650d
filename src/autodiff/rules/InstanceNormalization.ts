/**
 * InstanceNormalization: each (n, c) slice is normalised over the spatial axes, then scaled and
 * shifted per channel. With x̂ = (X − mean)·inv, inv = 1/√(var + ε), g = dY·γ[c] (means over the
 * spatial axes):
 *   dX = inv·(g − mean(g) − x̂·mean(g·x̂)),  dγ = Σ_{n,spatial} dY·x̂,  dβ = Σ_{n,spatial} dY
 */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { reduce, scalarOf, unsqueeze } from '../ops.ts';

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
    const mean = (v: string) => reduce(ctx, 'ReduceMean', v, spatial, 1);
    const d = b.op('Sub', [x, mean(x)]);
    const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [d, d])), scalarOf(ctx, attrFloat(ctx.node, 'epsilon', 1e-5), dt)])])]);
    const xhat = b.op('Mul', [d, inv]);
    const perChannel = (v: string) => unsqueeze(ctx, v, Array.from({ length: r - 2 }, (_, i) => i + 1));
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) {
      const g = b.op('Mul', [dY, perChannel(ctx.I(1))]);
      const centred = b.op('Sub', [g, mean(g)]);
      const proj = b.op('Mul', [xhat, mean(b.op('Mul', [g, xhat]))]);
      out[0] = b.op('Mul', [inv, b.op('Sub', [centred, proj])]);
    }
    if (ctx.needsGrad(1)) out[1] = reduce(ctx, 'ReduceSum', b.op('Mul', [dY, xhat]), [0, ...spatial], 0);
    if (ctx.needsGrad(2)) out[2] = reduce(ctx, 'ReduceSum', dY, [0, ...spatial], 0);
    return out;
  },
};
