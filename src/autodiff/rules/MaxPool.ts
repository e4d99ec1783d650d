/**
 * MaxPool: each output's gradient goes to the input element it selected. The selection comes
 * from MaxPool's Indices output (flat indices over the whole of X, row-major), recomputed by a
 * second MaxPool with the same attributes when the node does not output it; then
 *   dX = Reshape(ScatterElements(zeros[Size(X)], indices, dY, reduction='add'), Shape(X))
 * Overlapping windows can select one element twice, which needs reduction='add' (opset 16);
 * before that only non-overlapping windows (stride ≥ dilated kernel) are supported, and
 * storage_order=1 (column-major indices) is not.
 */
import type { GradRule } from '../rule.ts';
import { attrInt, attrInts, attrString } from '../../onnx/attributes.ts';
import { inFloat32, zerosOfShape } from '../../onnx/ops.ts';
import { shapeOf, unsupported } from './shared/helpers.ts';

export const maxPoolGrad: GradRule = {
  opType: 'MaxPool',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    if (attrInt(ctx.node, 'storage_order', 0) !== 0) unsupported(ctx, 'storage_order=1');
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const kernel = attrInts(ctx.node, 'kernel_shape') ?? unsupported(ctx, 'no kernel_shape');
    const strides = attrInts(ctx.node, 'strides') ?? kernel.map(() => 1);
    const dilations = attrInts(ctx.node, 'dilations') ?? kernel.map(() => 1);
    const overlapping = kernel.some((k, i) => strides[i]! < (k - 1) * dilations[i]! + 1);
    if (overlapping && ctx.opset < 16) unsupported(ctx, 'overlapping windows need ScatterElements reduction (opset 16)');
    let indices = ctx.node.output[1] || undefined;
    if (!indices) {
      const attrs = {
        auto_pad: attrString(ctx.node, 'auto_pad'),
        ceil_mode: attrInt(ctx.node, 'ceil_mode'),
        dilations: attrInts(ctx.node, 'dilations'),
        kernel_shape: kernel,
        pads: attrInts(ctx.node, 'pads'),
        strides: attrInts(ctx.node, 'strides'),
      };
      indices = b.opN('MaxPool', [x], attrs, { outputs: 2 })[1]!;
    }
    const flatShape = b.op('Reshape', [b.op('Size', [x]), b.constInt64([1])]);
    const flatIdx = b.op('Reshape', [indices, b.constInt64([-1])]);
    const flatDy = b.op('Reshape', [dY, b.constInt64([-1])]);
    const scattered = inFloat32(ctx, dt, [flatDy], ([u], ct) =>
      b.op('ScatterElements', [zerosOfShape(ctx, flatShape, ct), flatIdx, u!], overlapping ? { axis: 0, reduction: 'add' } : { axis: 0 }),
    );
    return [b.op('Reshape', [scattered, shapeOf(ctx, x)])];
  },
};
