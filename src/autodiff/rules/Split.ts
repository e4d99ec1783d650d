/**
 * Split: dX = Concat(dY₀, dY₁, …) along the split axis, with zeros shaped like an output where no
 * gradient reaches it. Split sizes (input 1 from opset 13, attribute before; `num_outputs` from
 * 18) need not be read: the outputs' shapes carry them.
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { normAxis } from '../../onnx/ops.ts';
import { zerosLike } from './shared/helpers.ts';

export const splitGrad: GradRule = {
  opType: 'Split',
  differentiableInputs: [0],
  grad(ctx) {
    if (!ctx.needsGrad(0)) return [];
    const outputs = ctx.node.output;
    const grads = outputs.map((_, i) => ctx.GO(i));
    if (grads.every((g) => g === undefined)) return [];
    if (outputs.length === 1) return [grads[0]];
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), ctx.rank(ctx.I(0)));
    const parts = grads.map((g, i) => g ?? zerosLike(ctx, ctx.O(i)));
    return [ctx.b.op('Concat', parts, { axis })];
  },
};
