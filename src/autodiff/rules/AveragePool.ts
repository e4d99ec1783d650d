/**
 * AveragePool. Output o averages the window taps p = o·s − pb + κ·d (κ < k, strides s,
 * dilations d, begin pads pb) that count: those inside X (count_include_pad=0) or inside the
 * padded extent [−pb, X + pe) (count_include_pad=1); with ceil_mode=1 the last windows may reach
 * past the padded extent, and those taps never count. With c(o) the number of counted taps:
 *   Y[o] = Σ_{counted taps} X[p] / c(o)   (padding reads zero)
 *   dX = Sᵀ(dY / c)
 * where Sᵀ, the adjoint of the window sum, is a ConvTranspose with an all-ones kernel run per
 * (n, c) plane (dY reshaped to [N·C, 1, …], so N and C may be dynamic), cut/zero-padded to X's
 * spatial size. c is the constant K = Πk where every window holds K counted taps (no padding, or
 * count_include_pad=1 without overhang), else an all-ones Conv over a ones image of the counted
 * region, end-padded by the overhang e = (O − 1)·s + (k − 1)·d + 1 − (X + pb + pe) so it yields
 * one count per output.
 */
import type { GradRule } from '../rule.ts';
import { attrInt, attrInts } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { concatInts, scalarOf, zerosOfShape } from '../../onnx/ops.ts';
import { dimPiece, dimsOf, fitSpatial, shapeOf, unsupported, windowAttrs } from './shared/helpers.ts';

export const averagePoolGrad: GradRule = {
  opType: 'AveragePool',
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const x = ctx.I(0);
    const y = ctx.O(0);
    const dt = ctx.dtype(x);
    const rank = ctx.rank(x);
    const nsp = rank - 2;
    const spatial = Array.from({ length: nsp }, (_, i) => i + 2);
    const kernel = attrInts(ctx.node, 'kernel_shape') ?? unsupported(ctx, 'no kernel_shape');
    const w = windowAttrs(ctx, kernel);
    const includePad = attrInt(ctx.node, 'count_include_pad', 0) === 1;
    const K = kernel.reduce((p, k) => p * k, 1);
    const onesKernel = dt === DT.DOUBLE ? b.constDouble(new Array<number>(K).fill(1), [1, 1, ...kernel]) : b.constFloat(new Array<number>(K).fill(1), [1, 1, ...kernel], dt);
    const geometry = { strides: w.strides, dilations: w.dilations };
    const xs = ctx.shape(x).slice(2);
    const os = ctx.shape(y).slice(2);
    const extent = (i: number) => (kernel[i]! - 1) * w.dilations[i]! + 1;
    // Overhang past the padded extent (ceil_mode); needs static dims, else it is assumed 0 only
    // when ceil_mode is off (floor mode never overhangs).
    const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
    const overhang = spatial.map((_, i) => {
      const n = xs[i];
      const o = os[i];
      if (typeof n !== 'number' || typeof o !== 'number') {
        if (ceil) unsupported(ctx, 'ceil_mode=1 with dynamic spatial dims');
        return 0;
      }
      return Math.max(0, (o - 1) * w.strides[i]! + extent(i) - (n + w.pads[i]! + w.pads[i + nsp]!));
    });
    const anyPad = w.pads.some((p) => p > 0);
    let z: string;
    if ((!anyPad || includePad) && overhang.every((e) => e === 0)) {
      z = b.op('Mul', [dY, scalarOf(ctx, 1 / K, dt)]);
    } else {
      // Counted taps per window: an all-ones Conv over a ones image of the counted region.
      const region = includePad
        ? spatial.map((a, i) => {
            const n = dimPiece(ctx, x, a);
            const padded = w.pads[i]! + w.pads[i + nsp]!;
            return typeof n === 'number' ? n + padded : b.op('Add', [n, b.constInt64([padded])]);
          })
        : spatial.map((a) => dimPiece(ctx, x, a));
      const ones = b.op('Add', [zerosOfShape(ctx, concatInts(ctx, [1, 1, ...region]), dt, rank), scalarOf(ctx, 1, dt)]);
      const begin = includePad ? new Array<number>(nsp).fill(0) : w.pads.slice(0, nsp);
      const end = spatial.map((_, i) => (includePad ? 0 : w.pads[i + nsp]!) + overhang[i]!);
      const counts = b.op('Conv', [ones, onesKernel], { ...geometry, pads: [...begin, ...end] });
      z = b.op('Div', [dY, counts]);
    }
    const planes = b.op('Reshape', [z, concatInts(ctx, [-1, 1, dimsOf(ctx, y, spatial)])]);
    const beginOnly = [...w.pads.slice(0, nsp), ...new Array<number>(nsp).fill(0)];
    const full = b.op('ConvTranspose', [planes, onesKernel], { ...geometry, pads: beginOnly });
    const fullDims = os.map((o, i) => (typeof o === 'number' ? (o - 1) * w.strides[i]! + extent(i) - w.pads[i]! : null));
    return [b.op('Reshape', [fitSpatial(ctx, full, x, fullDims), shapeOf(ctx, x)])];
  },
};
