/**
 * Softmax: dX = Y · (dY − Σ(dY · Y)), the sum over the normalized axes with keepdims.
 * Opset ≥ 13 normalizes along `axis` (default −1). Before 13 the input is coerced to 2-D at
 * `axis` (default 1), so the normalized axes are axis … rank−1.
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { normAxis, reduce } from '../../onnx/ops.ts';
import type { GradContext } from '../rule.ts';

/** Axes a (Log)Softmax node normalizes over. */
export function softmaxAxes(ctx: GradContext): number[] {
  const rank = ctx.rank(ctx.I(0));
  if (ctx.opset >= 13) return [normAxis(attrInt(ctx.node, 'axis', -1), rank)];
  const axis = normAxis(attrInt(ctx.node, 'axis', 1), rank);
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

export const softmaxGrad: GradRule = {
  opType: 'Softmax',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const y = ctx.O(0);
    const s = reduce(ctx, 'ReduceSum', b.op('Mul', [dY, y]), softmaxAxes(ctx), 1);
    return [b.op('Mul', [y, b.op('Sub', [dY, s])])];
  },
};
