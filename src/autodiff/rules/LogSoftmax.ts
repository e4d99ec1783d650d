/**
 * LogSoftmax: dX = dY − exp(Y) · Σ dY, the sum over the normalized axes with keepdims (axis
 * semantics as for Softmax).
 */
import type { GradRule } from '../rule.ts';
import { reduce } from '../../onnx/ops.ts';
import { softmaxAxes } from './Softmax.ts';

export const logSoftmaxGrad: GradRule = {
  opType: 'LogSoftmax',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const s = reduce(ctx, 'ReduceSum', dY, softmaxAxes(ctx), 1);
    return [b.op('Sub', [dY, b.op('Mul', [b.op('Exp', [ctx.O(0)]), s])])];
  },
};
