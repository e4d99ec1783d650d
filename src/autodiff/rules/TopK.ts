/**
 * TopK (K, input 1, is a stop-gradient edge; the Indices output carries no gradient). Each value
 * came from one position of X, and within a slice the positions differ, so
 *   dX = ScatterElements(zeros like X, Indices, dValues, axis)
 * needs no reduction and works at every opset.
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { zerosLike } from './shared/helpers.ts';

export const topKGrad: GradRule = {
  opType: 'TopK',
  differentiableInputs: [0],
  grad(ctx) {
    const dValues = ctx.GO(0);
    if (!dValues || !ctx.needsGrad(0)) return [];
    const axis = attrInt(ctx.node, 'axis', -1);
    return [ctx.b.op('ScatterElements', [zerosLike(ctx, ctx.I(0)), ctx.O(1), dValues], { axis })];
  },
};
