/**
 * ScatterElements (indices, input 1, are a stop-gradient edge), along `axis`:
 *   dUpdates = GatherElements(dY, indices, axis)
 *   dData    = dY with the written elements zeroed (ScatterElements of zeros), or dY itself for
 *              reduction='add'.
 * Reductions 'mul', 'max' and 'min' are not supported.
 */
import type { GradRule } from '../rule.ts';
import { attrInt, attrString } from '../../onnx/attributes.ts';
import { unsupported, zerosLike } from '../shape-helpers.ts';

export const scatterElementsGrad: GradRule = {
  opType: 'ScatterElements',
  differentiableInputs: [0, 2],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const reduction = attrString(ctx.node, 'reduction', 'none');
    if (reduction !== 'none' && reduction !== 'add') unsupported(ctx, `reduction '${reduction}' has no gradient rule`);
    const b = ctx.b;
    const axis = attrInt(ctx.node, 'axis', 0);
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) out[0] = reduction === 'add' ? dY : b.op('ScatterElements', [dY, ctx.I(1), zerosLike(ctx, ctx.I(2))], { axis });
    if (ctx.needsGrad(2)) out[2] = b.op('GatherElements', [dY, ctx.I(1)], { axis });
    return out;
  },
};
