/**
 * LayerNormalization (opset 17), over the axes [axis, rank). Mean and inverse standard deviation
 * are recomputed from X (the optional Mean/InvStdDev outputs are not relied on):
 *   x̂ = (X − mean)·inv,  inv = 1/√(var + ε),  g = dY·γ
 *   dX = inv·(g − mean(g) − x̂·mean(g·x̂))     (means over the normalised axes)
 *   dγ = Σ dY·x̂,  dβ = Σ dY                     (sums down to γ's / β's shape)
 * With stash_type=1 (the default) and a half-precision X, the arithmetic runs in float32.
 */
import type { GradRule } from '../rule.ts';
import { attrFloat, attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { hasInput, normAxis, reduce, scalarOf } from '../shape-helpers.ts';

export const layerNormalizationGrad: GradRule = {
  opType: 'LayerNormalization',
  differentiableInputs: [0, 1, 2],
  grad(ctx) {
    const dY0 = ctx.GO(0);
    if (!dY0) return [];
    const b = ctx.b;
    const x0 = ctx.I(0);
    const rank = ctx.rank(x0);
    const axis = normAxis(attrInt(ctx.node, 'axis', -1), rank);
    const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
    const dt = ctx.dtype(x0);
    const half = dt === DT.FLOAT16 || dt === DT.BFLOAT16;
    const ct = half && attrInt(ctx.node, 'stash_type', 1) === 1 ? DT.FLOAT : dt;
    const up = (v: string) => (ct === dt ? v : b.op('Cast', [v], { to: ct }));
    const down = (v: string) => (ct === dt ? v : b.op('Cast', [v], { to: dt }));

    const norm = Array.from({ length: rank - axis }, (_, i) => axis + i);
    const outer = Array.from({ length: axis }, (_, i) => i);
    const x = up(x0);
    const dY = up(dY0);
    const mean = (v: string) => reduce(ctx, 'ReduceMean', v, norm, 1);

    const d = b.op('Sub', [x, mean(x)]);
    const variance = mean(b.op('Mul', [d, d]));
    const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, scalarOf(ctx, eps, ct)])])]);
    const xhat = b.op('Mul', [d, inv]);

    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) {
      const g = b.op('Mul', [dY, up(ctx.I(1))]);
      const centred = b.op('Sub', [g, mean(g)]);
      const proj = b.op('Mul', [xhat, mean(b.op('Mul', [g, xhat]))]);
      out[0] = down(b.op('Mul', [inv, b.op('Sub', [centred, proj])]));
    }
    // Sums over the outer axes leave X.shape[axis:]; unbroadcast takes that on to γ's / β's shape.
    const normShape = ctx.shape(x0).slice(axis);
    if (ctx.needsGrad(1)) {
      const dScale = down(reduce(ctx, 'ReduceSum', b.op('Mul', [dY, xhat]), outer, 0));
      out[1] = ctx.unbroadcast(dScale, ctx.I(1), normShape);
    }
    if (hasInput(ctx, 2) && ctx.needsGrad(2)) {
      out[2] = ctx.unbroadcast(reduce(ctx, 'ReduceSum', dY0, outer, 0), ctx.I(2), normShape);
    }
    return out;
  },
};
