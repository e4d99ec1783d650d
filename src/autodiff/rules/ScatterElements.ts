/**
 * ScatterElements (indices, input 1, are a stop-gradient edge), along `axis`:
 *   dUpdates = GatherElements(dY, indices, axis)
 *   dData    = dY with the written elements zeroed (ScatterElements of zeros), or dY itself for
 *              reduction='add'.
 * reduction='mul' as in ScatterND; 'max' and 'min' are not supported. Same form as ScatterND
 * (see ScatterND.ts).
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { scatterGrad } from './ScatterND.ts';

export const scatterElementsGrad: GradRule = {
  opType: 'ScatterElements',
  differentiableInputs: [0, 2],
  grad: (ctx) => scatterGrad(ctx, 'ScatterElements', 'GatherElements', { axis: attrInt(ctx.node, 'axis', 0) }),
};
