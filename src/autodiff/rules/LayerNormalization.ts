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
 * GroupNormalization and InstanceNormalization share x̂ and dX (`standardize`, `standardizedGrad`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrFloat, attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { normAxis, reduce, scalarOf } from '../../onnx/ops.ts';
import { dimsOf, hasInput, shapeOf, zerosLike } from './shared/helpers.ts';

export const layerNormalizationGrad: GradRule = {
  opType: 'LayerNormalization',
  differentiableInputs: [0, 1, 2],
  grad(ctx) {
    const dY0 = ctx.GO(0);
    const dMean0 = ctx.node.output.length > 1 && ctx.O(1) ? ctx.GO(1) : undefined;
    const dInv0 = ctx.node.output.length > 2 && ctx.O(2) ? ctx.GO(2) : undefined;
    if (!dY0 && !dMean0 && !dInv0) return [];
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
    const toCt = (v: string, like: string) => (ctx.dtype(like) === ct ? v : b.op('Cast', [v], { to: ct }));
    const s = standardize(ctx, x, norm, eps, ct);
    const { d, inv, xhat } = s;

    const out: Array<string | undefined> = [];
    const dY = dY0 ? up(dY0) : undefined;
    if (ctx.needsGrad(0)) {
      let dx: string | undefined;
      if (dY) {
        dx = standardizedGrad(ctx, s, b.op('Mul', [dY, up(ctx.I(1))]));
      }
      if (dMean0 || dInv0) {
        let sum: string | undefined = dMean0 ? toCt(dMean0, ctx.O(1)) : undefined;
        if (dInv0) {
          const cube = b.op('Mul', [inv, b.op('Mul', [inv, inv])]);
          const t = b.op('Mul', [b.op('Mul', [toCt(dInv0, ctx.O(2)), cube]), d]);
          sum = sum ? b.op('Sub', [sum, t]) : b.op('Neg', [t]);
        }
        const dims = ctx.shape(x0).slice(axis);
        let scaled: string;
        if (dims.every((v) => typeof v === 'number')) {
          scaled = b.op('Mul', [sum!, scalarOf(ctx, 1 / (dims as number[]).reduce((p, v) => p * v, 1), ct)]);
        } else {
          const n = b.op('Cast', [b.op('ReduceProd', [dimsOf(ctx, x0, norm)], { keepdims: 0 })], { to: ct });
          scaled = b.op('Div', [sum!, n]);
        }
        dx = dx ? b.op('Add', [dx, scaled]) : b.op('Expand', [scaled, shapeOf(ctx, x0)]);
      }
      out[0] = down(dx!);
    }
    // Sums over the outer axes leave X.shape[axis:]; unbroadcast takes that on to γ's / β's shape.
    const normShape = ctx.shape(x0).slice(axis);
    if (dY && ctx.needsGrad(1)) {
      const dScale = down(reduce(ctx, 'ReduceSum', b.op('Mul', [dY, xhat]), outer, 0));
      out[1] = ctx.unbroadcast(dScale, ctx.I(1), normShape);
    }
    if (dY0 && hasInput(ctx, 2) && ctx.needsGrad(2)) {
      out[2] = ctx.unbroadcast(reduce(ctx, 'ReduceSum', dY0, outer, 0), ctx.I(2), normShape);
    }
    // Only Mean/InvStdDev used: γ and β do not affect them.
    for (const i of [1, 2]) if (!out[i] && hasInput(ctx, i) && ctx.needsGrad(i)) out[i] = zerosLike(ctx, ctx.I(i));
    return out;
  },
};

/** x̂ = (X − mean)·inv with d = X − mean, inv = 1/√(var + ε); `mean` averages over `axes`, kept. */
export interface Standardized {
  d: string;
  inv: string;
  xhat: string;
  mean: (v: string) => string;
}

/** Standardizes `x` (of element type `dt`) over `axes`. */
export function standardize(ctx: GradContext, x: string, axes: readonly number[], eps: number, dt: number): Standardized {
  const b = ctx.b;
  const mean = (v: string) => reduce(ctx, 'ReduceMean', v, axes, 1);
  const d = b.op('Sub', [x, mean(x)]);
  const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [d, d])), scalarOf(ctx, eps, dt)])])]);
  return { d, inv, xhat: b.op('Mul', [d, inv]), mean };
}

/** dX where `g` reaches x̂: inv·(g − mean(g) − x̂·mean(g·x̂)). */
export function standardizedGrad(ctx: GradContext, s: Standardized, g: string): string {
  const b = ctx.b;
  const centred = b.op('Sub', [g, s.mean(g)]);
  const proj = b.op('Mul', [s.xhat, s.mean(b.op('Mul', [g, s.xhat]))]);
  return b.op('Mul', [s.inv, b.op('Sub', [centred, proj])]);
}
