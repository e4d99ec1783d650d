/**
 * CumSum: each input element feeds the outputs after it (or before it, with reverse=1), so
 * dX = CumSum(dY, axis) with `reverse` flipped and the same `exclusive`. The axis (input 1) is a
 * stop-gradient edge and is passed through.
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';

export const cumSumGrad: GradRule = {
  opType: 'CumSum',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const reverse = attrInt(ctx.node, 'reverse', 0) === 1 ? 0 : 1;
    return [ctx.b.op('CumSum', [dY, ctx.I(1)], { exclusive: attrInt(ctx.node, 'exclusive', 0), reverse })];
  },
};
