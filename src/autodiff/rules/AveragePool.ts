/**
 * AveragePool (ceil_mode=0). Each output is the sum of its window divided by a count c: the
 * kernel size K, or with count_include_pad=0 and padding, the number of window positions inside
 * X (an all-ones Conv over a ones image, computed at run time). So
 *   dX = Sᵀ(dY / c)
 * where Sᵀ, the adjoint of the window sum, is a ConvTranspose with an all-ones kernel run per
 * (n, c) plane (dY reshaped to [N·C, 1, …], so N and C may be dynamic), cut/zero-padded to X's
 * spatial size. ceil_mode=1 is not supported.
 */
import type { GradRule } from '../rule.ts';
import { attrInt, attrInts } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { concatInts, scalarOf, zerosOfShape } from '../../onnx/ops.ts';
import { dimsOf, fitSpatial, shapeOf, unsupported, windowAttrs } from './shared/helpers.ts';

export const averagePoolGrad: GradRule = {
  opType: 'AveragePool',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    if (attrInt(ctx.node, 'ceil_mode', 0) === 1) unsupported(ctx, 'ceil_mode=1');
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const nsp = ctx.rank(x) - 2;
    const spatial = Array.from({ length: nsp }, (_, i) => i + 2);
    const kernel = attrInts(ctx.node, 'kernel_shape');
    if (!kernel) unsupported(ctx, 'no kernel_shape');
    const w = windowAttrs(ctx, kernel);
    const K = kernel.reduce((p, k) => p * k, 1);
    const onesKernel = dt === DT.DOUBLE ? b.constDouble(new Array<number>(K).fill(1), [1, 1, ...kernel]) : b.constFloat(new Array<number>(K).fill(1), [1, 1, ...kernel], dt);
    const geometry = { strides: w.strides, dilations: w.dilations };
    let z: string;
    if (attrInt(ctx.node, 'count_include_pad', 0) === 1 || w.pads.every((p) => p === 0)) {
      z = b.op('Mul', [dY, scalarOf(ctx, 1 / K, dt)]);
    } else {
      // In-bounds positions per window: an all-ones Conv over a [1, 1, X…] ones image.
      const ones = b.op('Add', [zerosOfShape(ctx, concatInts(ctx, [1, 1, dimsOf(ctx, x, spatial)]), dt), scalarOf(ctx, 1, dt)]);
      const counts = b.op('Conv', [ones, onesKernel], { ...geometry, pads: w.pads });
      z = b.op('Div', [dY, counts]);
    }
    const planes = b.op('Reshape', [z, concatInts(ctx, [-1, 1, dimsOf(ctx, ctx.O(0), spatial)])]);
    const beginOnly = [...w.pads.slice(0, nsp), ...new Array<number>(nsp).fill(0)];
    const full = b.op('ConvTranspose', [planes, onesKernel], { ...geometry, pads: beginOnly });
    return [b.op('Reshape', [fitSpatial(ctx, full, x), shapeOf(ctx, x)])];
  },
};
