/**
 * ScatterND (indices, input 1, are a stop-gradient edge). Y is data with the slices at
 * `indices` replaced by (or, with reduction='add', increased by) `updates`:
 *   dUpdates = GatherND(dY, indices)
 *   dData    = dY with the overwritten slices zeroed (ScatterND of zeros), or dY itself for 'add'.
 * reduction='mul' multiplies (see `mulGrads`); 'max' and 'min' are not supported. With repeated indices and no reduction
 * the forward result is itself unspecified. ScatterElements has the same form (`scatterGrad`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrString } from '../../onnx/attributes.ts';
import { unsupported, zerosLike } from './shared/helpers.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const scatterNDGrad: GradRule = {
  opType: 'ScatterND',
  differentiableInputs: [0, 2],
  grad: (ctx) => scatterGrad(ctx, 'ScatterND', 'GatherND', {}),
};

/**
 * Gradients of a `scatter` node (ScatterND, ScatterElements) with `attrs` (e.g. axis) for both
 * ops: dData = dY with the written positions zeroed (`scatter` of zeros), or dY itself for
 * reduction='add'; dUpdates = `gather`(dY, indices). reduction='mul' (opset 16): see `mulGrads`.
 */
export function scatterGrad(ctx: GradContext, scatter: 'ScatterND' | 'ScatterElements', gather: 'GatherND' | 'GatherElements', attrs: Record<string, number>): Array<string | undefined> {
  const dY = ctx.GO(0);
  if (!dY) return [];
  const reduction = attrString(ctx.node, 'reduction', 'none');
  if (reduction === 'mul') return mulGrads(ctx, dY, scatter, gather, attrs);
  if (reduction !== 'none' && reduction !== 'add') unsupported(ctx, `reduction '${reduction}' has no gradient rule`);
  const b = ctx.b;
  const out: Array<string | undefined> = [];
  if (ctx.needsGrad(0)) out[0] = reduction === 'add' ? dY : b.op(scatter, [dY, ctx.I(1), zerosLike(ctx, ctx.I(2))], attrs);
  if (ctx.needsGrad(2)) out[2] = b.op(gather, [dY, ctx.I(1)], attrs);
  return out;
}

/**
 * reduction='mul': each position is multiplied by every update written to it, so with
 * P = scatter(ones, indices, updates, 'mul') (1 where nothing is written), Y = data·P and
 *   dData = dY·P
 *   dUⱼ = (dY·data)[idxⱼ] · Π_{k≠j, idxₖ = idxⱼ} uₖ
 * The product of the other updates at a position is taken without dividing by zero, as in
 * ReduceProd: with Pnz the product of the non-zero updates there and Z their number of zeros,
 * it is Pnz/uⱼ (Z = 0), Pnz at the zero itself (Z = 1), 0 otherwise.
 */
function mulGrads(ctx: GradContext, dY: string, scatter: 'ScatterND' | 'ScatterElements', gather: 'GatherND' | 'GatherElements', attrs: Record<string, number>): Array<string | undefined> {
  const b = ctx.b;
  const data = ctx.I(0);
  const indices = ctx.I(1);
  const u = ctx.I(2);
  const dt = ctx.dtype(data);
  const zero = scalarOf(ctx, 0, dt);
  const one = scalarOf(ctx, 1, dt);
  const ones = b.op('Add', [zerosLike(ctx, data), one]);
  const out: Array<string | undefined> = [];
  if (ctx.needsGrad(0)) out[0] = b.op('Mul', [dY, b.op(scatter, [ones, indices, u], { ...attrs, reduction: 'mul' })]);
  if (ctx.needsGrad(2)) {
    const isZero = b.op('Equal', [u, zero]);
    const safeU = b.op('Where', [isZero, one, u]);
    const at = (v: string) => b.op(gather, [v, indices], attrs);
    const pnz = at(b.op(scatter, [ones, indices, safeU], { ...attrs, reduction: 'mul' }));
    const zeros = at(b.op(scatter, [zerosLike(ctx, data), indices, b.op('Cast', [isZero], { to: dt })], { ...attrs, reduction: 'add' }));
    const none = b.op('Equal', [zeros, zero]);
    const single = b.op('Equal', [zeros, one]);
    const others = b.op('Where', [none, b.op('Div', [pnz, safeU]), b.op('Where', [b.op('And', [single, isZero]), pnz, zero])]);
    out[2] = b.op('Mul', [at(b.op('Mul', [dY, data])), others]);
  }
  return out;
}
