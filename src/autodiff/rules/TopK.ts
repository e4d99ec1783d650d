/**
 * TopK (K, input 1 from opset 10 and an attribute before, is a stop-gradient edge; the Indices
 * output carries no gradient). Values = GatherElements(X, Indices, axis), and within a slice the
 * positions differ, so dX is dValues written into zeros at Indices along axis:
 *   opset ≥ 9:  ScatterElements (Scatter at 9 and 10) of dValues into zeros like X
 *   before 9:   the one-hot sum of GatherElements' gradient (`oneHotScatterAdd`; X's dim along
 *               axis must be static there)
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { normAxis, scatterElements } from '../../onnx/ops.ts';
import { zerosLike } from './shared/helpers.ts';
import { oneHotScatterAdd } from './GatherElements.ts';

export const topKGrad: GradRule = {
  opType: 'TopK',
  differentiableInputs: [0],
  grad(ctx) {
    const dValues = ctx.GO(0);
    if (!dValues || !ctx.needsGrad(0)) return [];
    const x = ctx.I(0);
    const axis = normAxis(attrInt(ctx.node, 'axis', -1), ctx.rank(x));
    if (ctx.opset < 9) return [oneHotScatterAdd(ctx, x, ctx.O(1), dValues, axis)];
    return [scatterElements(ctx, zerosLike(ctx, x), ctx.O(1), dValues, axis)];
  },
};
