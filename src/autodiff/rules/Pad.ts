/**
 * Pad, constant mode (pads, constant_value and axes are stop-gradient edges). Padding in the
 * forward pass is cropping in the backward pass and vice versa. With constant, non-negative pads
 * dX is the middle of dY, a Slice; otherwise dX = Pad(dY, −pads) with zeros: positive pads crop
 * dY, negative pads (forward cropping) give zeros back. The axes
 * input (opset 18) is passed through unchanged. Before opset 11 the pads are the `pads` attribute
 * (constant): the same Slice, or a Pad attribute form. Reflect/edge/wrap modes are not supported.
 */
import type { GradRule } from '../rule.ts';
import { attrInts, attrString } from '../../onnx/attributes.ts';
import { hasInput, unsupported } from './shared/helpers.ts';
import { padConst, sliceConst } from '../../onnx/ops.ts';

export const padGrad: GradRule = {
  opType: 'Pad',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const mode = attrString(ctx.node, 'mode', 'constant');
    if (mode !== 'constant') unsupported(ctx, `mode '${mode}' has no gradient rule (only 'constant')`);
    const b = ctx.b;
    // Pads: the `pads` attribute before opset 11 (`paddings` in Pad-1), input 1 from 11.
    const attrPads = ctx.opset < 11 ? (attrInts(ctx.node, 'pads') ?? attrInts(ctx.node, 'paddings')) : undefined;
    if (ctx.opset < 11 && !attrPads) unsupported(ctx, 'no pads attribute');
    const constPads = attrPads ?? ctx.constInts(ctx.I(1));
    let axes: number[] | undefined;
    if (hasInput(ctx, 3)) axes = ctx.constInts(ctx.I(3));
    else axes = Array.from({ length: ctx.rank(ctx.I(0)) }, (_, i) => i);
    if (constPads && constPads.every((p) => p >= 0) && axes) {
      // Pure padding: the gradient is the middle of dY, a Slice (avoids negative pads, which not
      // every execution provider's Pad takes).
      if (constPads.every((p) => p === 0)) return [dY];
      const n = axes.length;
      const used = axes.flatMap((a, i) => (constPads[i]! || constPads[i + n]! ? [i] : []));
      const starts = used.map((i) => constPads[i]!);
      const ends = used.map((i) => (constPads[i + n]! > 0 ? -constPads[i + n]! : 2 ** 62));
      return [sliceConst(ctx, dY, starts, ends, used.map((i) => axes[i]!))];
    }
    if (attrPads) return [padConst(ctx, dY, attrPads.map((p) => -p))];
    let neg: string;
    if (constPads) {
      if (constPads.every((p) => p === 0)) return [dY];
      neg = b.constInt64(constPads.map((p) => -p));
    } else {
      neg = b.op('Neg', [ctx.I(1)]);
    }
    const inputs = [dY, neg];
    if (hasInput(ctx, 3)) inputs.push('', ctx.I(3));
    return [b.op('Pad', inputs, { mode: 'constant' })];
  },
};
