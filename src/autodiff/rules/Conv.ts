/**
 * Conv, N-d, any group, in standard ops. With strides s, dilations d, pads (pb, pe), kernel k:
 *   Y[n,m,o] = Σ_{c,κ} W[m,c,κ] · Xpad[n, g(m)·Cg + c, o·s + κ·d] + B[m]
 *
 * - dX = ConvTranspose(dY, W) with the same strides, dilations, pads and group. Positions of X
 *   the forward pass never read (the floor in the output size) get zeros: output_padding when
 *   the sizes are static; else ConvTranspose without the end pads, cut to X's size and
 *   zero-padded at the end at run time.
 * - dW[m,c,κ] = Σ_{n,o} dY[n,m,o] · Xpad[n, c, κ·d + o·s]: a Conv whose batch is X's channels,
 *   whose channels are X's batch, whose kernel is dY (batch-major), with strides and dilations
 *   swapped; the result is sliced to the kernel size. For group G the input is rearranged to
 *   [Cg, G·N, …] and the Conv runs with group G.
 * - dB = Σ dY over the batch and spatial axes.
 * auto_pad SAME_* needs static spatial dims (the pads depend on them); VALID and NOTSET do not.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt, attrInts } from '../../onnx/attributes.ts';
import { concatInts, reduce, transpose } from '../../onnx/ops.ts';
import { cropToKernel, dimPiece, dimsOf, fitSpatial, hasInput, type WindowAttrs, windowAttrs } from './shared/helpers.ts';

interface ConvAttrs extends WindowAttrs {
  group: number;
}

function convAttrs(ctx: GradContext): ConvAttrs {
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? ctx.shape(ctx.I(1)).slice(2);
  return { ...windowAttrs(ctx, kernel), group: attrInt(ctx.node, 'group', 1) };
}

export const convGrad: GradRule = {
  opType: 'Conv',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const a = convAttrs(ctx);
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) out[0] = inputGrad(ctx, dY, a);
    if (ctx.needsGrad(1)) out[1] = weightGrad(ctx, dY, a);
    if (hasInput(ctx, 2) && ctx.needsGrad(2)) {
      const r = ctx.rank(ctx.I(0));
      out[2] = reduce(ctx, 'ReduceSum', dY, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2)], 0);
    }
    return out;
  },
};

function inputGrad(ctx: GradContext, dY: string, a: ConvAttrs): string {
  const b = ctx.b;
  const x = ctx.I(0);
  const nsp = ctx.rank(x) - 2;
  const xs = ctx.shape(x).slice(2);
  const ys = ctx.shape(ctx.O(0)).slice(2);
  const attrs = { strides: a.strides, dilations: a.dilations, pads: a.pads, group: a.group };
  const rem: Array<number | null> = xs.map((n, i) => {
    const o = ys[i];
    const k = a.kernel[i];
    if (typeof n !== 'number' || typeof o !== 'number' || typeof k !== 'number') return null;
    return n - ((o - 1) * a.strides[i]! + (k - 1) * a.dilations[i]! + 1 - a.pads[i]! - a.pads[i + nsp]!);
  });
  if (rem.every((v) => v !== null)) {
    const outputPadding = rem as number[];
    const withPadding = outputPadding.some((v) => v !== 0) ? { ...attrs, output_padding: outputPadding } : attrs;
    return b.op('ConvTranspose', [dY, ctx.I(1)], withPadding);
  }
  // Dynamic sizes: ConvTranspose without the end crop, cut to X's size (dropping the end padding
  // the forward pass read), then zeros appended for rows it never read. Slice + Pad with
  // non-negative pads only, which every execution provider takes.
  const beginOnly = [...a.pads.slice(0, nsp), ...new Array<number>(nsp).fill(0)];
  return fitSpatial(ctx, b.op('ConvTranspose', [dY, ctx.I(1)], { ...attrs, pads: beginOnly }), x);
}

/**
 * `v` [N, G·K, …] (shaped like forward value `like`; K = dim 1 of the weight, input 1) as
 * [K, G·N, …]: each group's K channels become the channels and the groups join the batch, so a
 * grouped Conv over it correlates group by group (the weight gradients of Conv and ConvTranspose).
 * With one group, the first two axes swapped.
 */
export function groupsToBatch(ctx: GradContext, v: string, like: string, group: number): string {
  const b = ctx.b;
  const spatial = Array.from({ length: ctx.rank(like) - 2 }, (_, i) => i + 2);
  if (group === 1) return transpose(ctx, v, [1, 0, ...spatial]);
  const sp = dimsOf(ctx, like, spatial);
  const split = b.op('Reshape', [v, concatInts(ctx, [dimPiece(ctx, like, 0), group, -1, sp])]); // [N, G, K, …]
  const moved = b.op('Transpose', [split], { perm: [2, 1, 0, ...spatial.map((i) => i + 1)] }); // [K, G, N, …]
  return b.op('Reshape', [moved, concatInts(ctx, [dimPiece(ctx, ctx.I(1), 1), -1, sp])]); // [K, G·N, …]
}

function weightGrad(ctx: GradContext, dY: string, a: ConvAttrs): string {
  const b = ctx.b;
  const x = ctx.I(0);
  const w = ctx.I(1);
  const r = ctx.rank(x);
  const nsp = r - 2;
  const spatial = Array.from({ length: nsp }, (_, i) => i + 2);
  const swap01 = [1, 0, ...spatial];
  const input = groupsToBatch(ctx, x, x, a.group); // [Cg, G·N, …]
  const kernel = transpose(ctx, dY, swap01); // [M, N, …]
  const conv = b.op('Conv', [input, kernel], { strides: a.dilations, dilations: a.strides, pads: a.pads, group: a.group });
  const dW = transpose(ctx, conv, swap01); // [M, Cg, k'…]
  // k' ≥ k: the trailing positions belong to no kernel tap.
  const xs = ctx.shape(x).slice(2);
  const ys = ctx.shape(ctx.O(0)).slice(2);
  const exact = xs.every((n, i) => {
    const o = ys[i];
    const k = a.kernel[i];
    if (typeof n !== 'number' || typeof o !== 'number' || typeof k !== 'number') return false;
    const kk = Math.floor((n + a.pads[i]! + a.pads[i + nsp]! - ((o - 1) * a.strides[i]! + 1)) / a.dilations[i]!) + 1;
    return kk === k;
  });
  if (exact) return dW;
  return cropToKernel(ctx, dW, w);
}
