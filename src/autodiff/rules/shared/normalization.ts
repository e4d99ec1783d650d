/**
 * The gradient math every normalisation rule shares: standardising a value over some axes
 * (LayerNormalization, GroupNormalization, InstanceNormalization, BatchNormalization in training
 * mode, com.microsoft SkipLayerNormalization and EmbedLayerNormalization) or scaling it by its
 * root mean square (RMSNormalization, SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization),
 * and the whole backward pass of a normalisation over trailing axes followed by a scale and a
 * shift (`trailingNormGrads`), which the LayerNormalization-like rules call with their own inputs.
 *
 * Notation, with means over the normalised axes and n the number of elements they hold:
 *   standard:  d = X − mean(X),  inv = 1/√(mean(d²) + ε),  x̂ = d·inv
 *   rms:       d = X,            inv = 1/√(mean(X²) + ε),  x̂ = X·inv
 * For g, the gradient reaching x̂:
 *   standard:  dX = inv·(g − mean(g) − x̂·mean(g·x̂))
 *   rms:       dX = inv·(g − x̂·mean(g·x̂))
 * (∂inv/∂Xⱼ = −inv³·dⱼ/n in both; the standard form also loses mean(g) through the centring.)
 * Gradients of the statistics a node may output (the mean μ, standard form only, and inv):
 *   dX += (dμ − dinv·inv³·d)/n
 */
import type { GradContext, StaticShape } from '../../rule.ts';
import { attrFloat, attrInt } from '../../../onnx/attributes.ts';
import { DataType as DT } from '../../../onnx/dtype.ts';
import { expandTo, normAxis, reduce, scalarOf } from '../../../onnx/ops.ts';
import { dimsOf, shapeOf, zerosLike } from './helpers.ts';

export type NormKind = 'standard' | 'rms';

/** X normalised over `axes` (see the notation above); `mean` averages over `axes`, kept. */
export interface Normalized {
  kind: NormKind;
  d: string;
  inv: string;
  xhat: string;
  mean: (v: string) => string;
}

/** Normalises `x` (of element type `dt`) over `axes`. */
export function normalize(ctx: GradContext, x: string, axes: readonly number[], eps: number, dt: number, kind: NormKind = 'standard'): Normalized {
  const b = ctx.b;
  const mean = (v: string) => reduce(ctx, 'ReduceMean', v, axes, 1);
  const d = kind === 'standard' ? b.op('Sub', [x, mean(x)]) : x;
  const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [d, d])), scalarOf(ctx, eps, dt)])])]);
  return { kind, d, inv, xhat: b.op('Mul', [d, inv]), mean };
}

/** dX where `g` reaches x̂ (see the notation above). */
export function normalizedGrad(ctx: GradContext, s: Normalized, g: string): string {
  const b = ctx.b;
  const centred = s.kind === 'standard' ? b.op('Sub', [g, s.mean(g)]) : g;
  const proj = b.op('Mul', [s.xhat, s.mean(b.op('Mul', [g, s.xhat]))]);
  return b.op('Mul', [s.inv, b.op('Sub', [centred, proj])]);
}

/** A normalisation over the trailing axes [axis, rank) followed by Y = x̂·scale (+ bias). */
export interface TrailingNorm {
  /** The value normalised (a forward value, or one recomputed in the backward pass). */
  x: string;
  /** A forward value with x's shape and element type (x itself when it is a forward value). */
  like: string;
  /** First normalised axis, non-negative. */
  axis: number;
  eps: number;
  kind: NormKind;
  /** Compute in float32 when x is a half type (stash_type = 1 and the contrib kernels). */
  float32ForHalf: boolean;
  /** Forward scale (γ) and bias (β) inputs, broadcast to x. */
  scale?: string;
  bias?: string;
  /** Gradients of the node's outputs: Y, and the statistics it outputs (mean, inverse std). */
  dY?: string;
  dMean?: string;
  dInvStd?: string;
  /** Which gradients the caller needs. */
  need: { x: boolean; scale: boolean; bias: boolean };
}

/**
 * The backward pass of a `TrailingNorm`: dX (x's type), dScale and dBias (each its input's type,
 * summed down to its shape). A gradient that is not needed, or that nothing reaches, is
 * undefined; dScale/dBias are zeros when only the statistics outputs are used.
 */
export function trailingNormGrads(ctx: GradContext, t: TrailingNorm): { dX?: string; dScale?: string; dBias?: string } {
  const b = ctx.b;
  const dt = ctx.dtype(t.like);
  const half = dt === DT.FLOAT16 || dt === DT.BFLOAT16;
  const ct = half && t.float32ForHalf ? DT.FLOAT : dt;
  const to = (v: string, from: number, target: number) => (from === target ? v : b.op('Cast', [v], { to: target }));
  const up = (v: string) => to(v, ctx.dtype(v), ct);
  const xShape: StaticShape = ctx.shape(t.like);
  const rank = xShape.length;
  const norm = Array.from({ length: rank - t.axis }, (_, i) => t.axis + i);
  const s = normalize(ctx, to(t.x, dt, ct), norm, t.eps, ct, t.kind);
  const dY = t.dY ? up(t.dY) : undefined;
  const out: { dX?: string; dScale?: string; dBias?: string } = {};

  if (t.need.x) {
    let dx: string | undefined;
    if (dY) dx = normalizedGrad(ctx, s, t.scale ? b.op('Mul', [dY, up(t.scale)]) : dY);
    const dMean = t.kind === 'standard' ? t.dMean : undefined;
    if (dMean || t.dInvStd) {
      let sum = dMean ? up(dMean) : undefined;
      if (t.dInvStd) {
        const cube = b.op('Mul', [s.inv, b.op('Mul', [s.inv, s.inv])]);
        const term = b.op('Mul', [b.op('Mul', [up(t.dInvStd), cube]), s.d]);
        sum = sum ? b.op('Sub', [sum, term]) : b.op('Neg', [term]);
      }
      const dims = xShape.slice(t.axis);
      let scaled: string;
      if (dims.every((v) => typeof v === 'number')) {
        scaled = b.op('Mul', [sum!, scalarOf(ctx, 1 / (dims as number[]).reduce((p, v) => p * v, 1), ct)]);
      } else {
        const n = b.op('Cast', [reduce(ctx, 'ReduceProd', dimsOf(ctx, t.like, norm), 'all', 0)], { to: ct });
        scaled = b.op('Div', [sum!, n]);
      }
      dx = dx ? b.op('Add', [dx, scaled]) : expandTo(ctx, scaled, shapeOf(ctx, t.like), rank);
    }
    if (dx) out.dX = to(dx, ct, dt);
  }
  // dY·x̂ and dY have x's shape; unbroadcast sums them down to γ's / β's shape.
  if (t.need.scale && t.scale) {
    out.dScale = dY ? ctx.unbroadcast(to(b.op('Mul', [dY, s.xhat]), ct, ctx.dtype(t.scale)), t.scale, xShape) : zerosLike(ctx, t.scale);
  }
  if (t.need.bias && t.bias) {
    out.dBias = t.dY ? ctx.unbroadcast(to(t.dY, ctx.dtype(t.dY), ctx.dtype(t.bias)), t.bias, xShape) : zerosLike(ctx, t.bias);
  }
  return out;
}

/**
 * `trailingNormGrads` for a node normalising input 0 with the attributes of LayerNormalization
 * and RMSNormalization: axis (−1), epsilon (1e-5), stash_type (1 = float32 for half inputs).
 */
export function attributeNormGrads(
  ctx: GradContext,
  kind: NormKind,
  io: Pick<TrailingNorm, 'scale' | 'bias' | 'dY' | 'dMean' | 'dInvStd' | 'need'>,
): { dX?: string; dScale?: string; dBias?: string } {
  const x = ctx.I(0);
  return trailingNormGrads(ctx, {
    ...io,
    x,
    like: x,
    axis: normAxis(attrInt(ctx.node, 'axis', -1), ctx.rank(x)),
    eps: attrFloat(ctx.node, 'epsilon', 1e-5),
    kind,
    float32ForHalf: attrInt(ctx.node, 'stash_type', 1) === 1,
  });
}
