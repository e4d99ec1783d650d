/**
 * ConvTranspose (N-d, any group), the adjoint of Conv. With W [C, M/G, k…], strides s, dilations
 * d, pads (pb, pe) cropping the full output and output_padding op:
 *   Y[n, m, i·s + κ·d − pb] += X[n, c, i] · W[c, m′, κ]   (+ B[m])
 * - dX = Conv(dY, W) with the same strides, dilations, pads and group: the Conv output has
 *   exactly X's size (op < s).
 * - dW[c, m′, κ] = Σ_{n,i} X[n, c, i] · dYpad[n, m, i·s + κ·d]: a Conv whose batch is dY's
 *   channels, whose channels are the batch, whose kernel is X (channel-major), strides and
 *   dilations swapped, sliced to k; for group G, dY is rearranged to [M/G, G·N, …].
 * - dB = Σ dY over the batch and spatial axes.
 * Not supported: auto_pad SAME_* and output_shape (implicit pads).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt, attrInts, attrString } from '../../onnx/attributes.ts';
import { reduce, transpose } from '../ops.ts';
import { cropToKernel, hasInput, unsupported } from '../shape-helpers.ts';
import { groupsToBatch } from './Conv.ts';

interface Geometry {
  strides: number[];
  dilations: number[];
  pads: number[];
  group: number;
}

export const convTransposeGrad: GradRule = {
  opType: 'ConvTranspose',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const nsp = ctx.rank(ctx.I(0)) - 2;
    const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') unsupported(ctx, `auto_pad ${autoPad}`);
    if (attrInts(ctx.node, 'output_shape')) unsupported(ctx, 'output_shape (implicit pads)');
    const ones = new Array<number>(nsp).fill(1);
    const g: Geometry = {
      strides: attrInts(ctx.node, 'strides') ?? ones,
      dilations: attrInts(ctx.node, 'dilations') ?? ones,
      pads: autoPad === 'VALID' ? new Array<number>(2 * nsp).fill(0) : (attrInts(ctx.node, 'pads') ?? new Array<number>(2 * nsp).fill(0)),
      group: attrInt(ctx.node, 'group', 1),
    };
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) out[0] = ctx.b.op('Conv', [dY, ctx.I(1)], { ...g });
    if (ctx.needsGrad(1)) out[1] = weightGrad(ctx, dY, g);
    if (hasInput(ctx, 2) && ctx.needsGrad(2)) out[2] = reduce(ctx, 'ReduceSum', dY, [0, ...Array.from({ length: nsp }, (_, i) => i + 2)], 0);
    return out;
  },
};

function weightGrad(ctx: GradContext, dY: string, g: Geometry): string {
  const b = ctx.b;
  const x = ctx.I(0);
  const w = ctx.I(1);
  const nsp = ctx.rank(x) - 2;
  const spatial = Array.from({ length: nsp }, (_, i) => i + 2);
  const swap01 = [1, 0, ...spatial];
  const kernel = transpose(ctx, x, swap01); // [C, N, in…]: out channels (g, c), in channels n
  const input = groupsToBatch(ctx, dY, ctx.O(0), g.group); // [Mg, G·N, out…]
  const conv = b.op('Conv', [input, kernel], { strides: g.dilations, dilations: g.strides, pads: g.pads, group: g.group }); // [Mg, C, k'…]
  const dW = transpose(ctx, conv, swap01); // [C, Mg, k'…]
  return cropToKernel(ctx, dW, w);
}
