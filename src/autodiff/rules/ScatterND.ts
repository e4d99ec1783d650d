/**
 * ScatterND (indices, input 1, are a stop-gradient edge). Y is data with the slices at
 * `indices` replaced by (or, with reduction='add', increased by) `updates`:
 *   dUpdates = GatherND(dY, indices)
 *   dData    = dY with the overwritten slices zeroed (ScatterND of zeros), or dY itself for 'add'.
 * Reductions 'mul', 'max' and 'min' are not supported. With repeated indices and no reduction
 * the forward result is itself unspecified. ScatterElements has the same form (`scatterGrad`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrString } from '../../onnx/attributes.ts';
import { unsupported, zerosLike } from './shared/helpers.ts';

export const scatterNDGrad: GradRule = {
  opType: 'ScatterND',
  differentiableInputs: [0, 2],
  grad: (ctx) => scatterGrad(ctx, 'ScatterND', 'GatherND', {}),
};

/**
 * Gradients of a `scatter` node (ScatterND, ScatterElements) with `attrs` (e.g. axis) for both
 * ops: dData = dY with the written positions zeroed (`scatter` of zeros), or dY itself for
 * reduction='add'; dUpdates = `gather`(dY, indices).
 */
export function scatterGrad(ctx: GradContext, scatter: 'ScatterND' | 'ScatterElements', gather: 'GatherND' | 'GatherElements', attrs: Record<string, number>): Array<string | undefined> {
  const dY = ctx.GO(0);
  if (!dY) return [];
  const reduction = attrString(ctx.node, 'reduction', 'none');
  if (reduction !== 'none' && reduction !== 'add') unsupported(ctx, `reduction '${reduction}' has no gradient rule`);
  const b = ctx.b;
  const out: Array<string | undefined> = [];
  if (ctx.needsGrad(0)) out[0] = reduction === 'add' ? dY : b.op(scatter, [dY, ctx.I(1), zerosLike(ctx, ctx.I(2))], attrs);
  if (ctx.needsGrad(2)) out[2] = b.op(gather, [dY, ctx.I(1)], attrs);
  return out;
}
