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
 * With output_shape or auto_pad SAME_* the pads are implicit (`transposePads`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt, attrInts, attrString } from '../../onnx/attributes.ts';
import { reduce, transpose } from '../../onnx/ops.ts';
import { cropToKernel, hasInput, unsupported } from './shared/helpers.ts';
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
    const ones = new Array<number>(nsp).fill(1);
    const g: Geometry = {
      strides: attrInts(ctx.node, 'strides') ?? ones,
      dilations: attrInts(ctx.node, 'dilations') ?? ones,
      pads: transposePads(ctx, nsp),
      group: attrInt(ctx.node, 'group', 1),
    };
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) out[0] = ctx.b.op('Conv', [dY, ctx.I(1)], { ...g });
    if (ctx.needsGrad(1)) out[1] = weightGrad(ctx, dY, g);
    if (hasInput(ctx, 2) && ctx.needsGrad(2)) out[2] = reduce(ctx, 'ReduceSum', dY, [0, ...Array.from({ length: nsp }, (_, i) => i + 2)], 0);
    return out;
  },
};

/**
 * The crop pads the forward pass used. Explicit `pads` (or none, VALID), unless the node sets
 * `output_shape` or auto_pad SAME_*: then, as the ConvTranspose spec defines them (and ONNX
 * Runtime 1.30 computes them: checked by the tests with odd crops), the total crop is
 *   t = (in − 1)·s + output_padding + (k − 1)·d + 1 − out
 * with out = output_shape, or in·s for SAME_* without it; SAME_UPPER puts ⌊t/2⌋ at the start
 * and the rest at the end, anything else the larger half at the start. (For SAME_* without
 * output_shape, t does not depend on `in`, so the input may be dynamic.)
 */
function transposePads(ctx: GradContext, nsp: number): number[] {
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  const outputShape = attrInts(ctx.node, 'output_shape');
  const same = autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER';
  if (!outputShape && !same) return autoPad === 'VALID' ? new Array<number>(2 * nsp).fill(0) : (attrInts(ctx.node, 'pads') ?? new Array<number>(2 * nsp).fill(0));
  const ones = new Array<number>(nsp).fill(1);
  const strides = attrInts(ctx.node, 'strides') ?? ones;
  const dilations = attrInts(ctx.node, 'dilations') ?? ones;
  const outPad = attrInts(ctx.node, 'output_padding') ?? new Array<number>(nsp).fill(0);
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? ctx.shape(ctx.I(1)).slice(2);
  const xs = ctx.shape(ctx.I(0)).slice(2);
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < nsp; i++) {
    const k = kernel[i];
    if (typeof k !== 'number') unsupported(ctx, 'output_shape or auto_pad with a dynamic kernel');
    const ext = (k - 1) * dilations[i]! + 1 + outPad[i]!;
    let total: number;
    if (outputShape) {
      const n = xs[i];
      if (typeof n !== 'number') unsupported(ctx, 'output_shape with dynamic spatial input dims (the crop depends on them)');
      total = (n - 1) * strides[i]! + ext - outputShape[outputShape.length - nsp + i]!;
    } else {
      total = ext - strides[i]!; // (in − 1)·s + ext − in·s
    }
    if (total < 0) unsupported(ctx, `an output larger than the full transposed convolution along spatial axis ${i}`);
    const small = Math.floor(total / 2);
    const head = autoPad === 'SAME_UPPER' ? small : total - small;
    begin.push(head);
    end.push(total - head);
  }
  return [...begin, ...end];
}

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
