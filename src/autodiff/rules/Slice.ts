/**
 * Slice (starts/ends/axes/steps as inputs from opset 10, attributes before; all stop-gradient
 * edges). dX is zeros shaped like X with dY written where the slice was taken:
 *
 * - Steps all 1 and axes known at build time: dX = Pad(dY, pads), with
 *   pads_begin[a] = clamp(start, 0, D) (a negative start counts from the end) and
 *   pads_end[a] = D − pads_begin[a] − len(dY, a). Works with dynamic dims and dynamic starts;
 *   ends are never read (INT_MAX and clamped ends need no care). Run-time pads before opset 11
 *   (no pads input) become Concats with zeros (`padZeros`).
 * - Otherwise (other steps, dynamic steps or axes): slice a tensor of flat element indices
 *   with the very same inputs, then ScatterND dY into flat zeros at those indices. Slice never
 *   takes an element twice, so no reduction is needed.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInts } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { intMinMax, needsOpset, normAxis, unsqueeze, zerosOfShape } from '../../onnx/ops.ts';
import { dimPiece, hasInput, padZeros, reshapeLike, unsupported } from './shared/helpers.ts';

/** int64 constants stay well inside the int64 range (INT_MAX-style values arrive as 2^63). */
const BIG = 2 ** 62;
const clampBig = (v: number) => Math.max(-BIG, Math.min(BIG, v));

type Int = number | string;

export const sliceGrad: GradRule = {
  opType: 'Slice',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const attrForm = ctx.inputCount === 1;
    const startsC = attrForm ? attrInts(ctx.node, 'starts') : ctx.constInts(ctx.I(1));
    const nAxes = startsC?.length ?? ctx.shape(ctx.I(1))[0] ?? null;
    let axes: number[] | undefined;
    if (attrForm) axes = attrInts(ctx.node, 'axes');
    else if (hasInput(ctx, 3)) axes = ctx.constInts(ctx.I(3));
    if (!axes && !(hasInput(ctx, 3) && !attrForm) && nAxes !== null) axes = Array.from({ length: nAxes }, (_, i) => i);
    const stepsC = !attrForm && hasInput(ctx, 4) ? ctx.constInts(ctx.I(4)) : [];
    const unitSteps = stepsC !== undefined && stepsC.every((s) => s === 1);
    if (axes && unitSteps) return [padBack(ctx, dY, axes, startsC)];
    if (attrForm) unsupported(ctx, 'attribute-form Slice without known axes');
    return [scatterBack(ctx, dY)];
  },
};

function padBack(ctx: GradContext, dY: string, axesIn: readonly number[], startsC: readonly number[] | undefined): string {
  const b = ctx.b;
  const x = ctx.I(0);
  const rank = ctx.rank(x);
  const arith = (op: 'Add' | 'Sub' | 'Min' | 'Max', p: Int, q: Int): Int => {
    if (typeof p === 'number' && typeof q === 'number') {
      return op === 'Add' ? p + q : op === 'Sub' ? p - q : op === 'Min' ? Math.min(p, q) : Math.max(p, q);
    }
    const t = (v: Int) => (typeof v === 'number' ? b.constInt64([clampBig(v)]) : v);
    return op === 'Min' || op === 'Max' ? intMinMax(ctx, op, t(p), t(q)) : b.op(op, [t(p), t(q)]);
  };
  let dyShape: string | undefined;
  const begin: Int[] = new Array<Int>(rank).fill(0);
  const end: Int[] = new Array<Int>(rank).fill(0);
  let startsI64: string | undefined;
  axesIn.forEach((axis, k) => {
    const a = normAxis(axis, rank);
    const D: Int = dimPiece(ctx, x, a);
    let start: Int;
    const sc = startsC?.[k];
    if (sc !== undefined) {
      const s = clampBig(sc);
      start = s >= 0 ? arith('Min', s, D) : arith('Max', arith('Add', s, D), 0);
    } else {
      startsI64 ??= b.op('Cast', [ctx.I(1)], { to: DT.INT64 });
      const sk = b.op('Gather', [startsI64, b.constInt64([k])], { axis: 0 });
      const wrapped = b.op('Where', [b.op('Less', [sk, b.constInt64([0])]), arith('Add', sk, D) as string, sk]);
      start = arith('Min', arith('Max', wrapped, 0), D);
    }
    const lStatic = ctx.shape(ctx.O(0))[a];
    let L: Int;
    if (typeof lStatic === 'number') L = lStatic;
    else {
      dyShape ??= b.op('Shape', [dY]);
      L = b.op('Gather', [dyShape, b.constInt64([a])], { axis: 0 });
    }
    begin[a] = start;
    end[a] = arith('Sub', arith('Sub', D, start), L);
  });
  const all = Array.from({ length: rank }, (_, i) => i);
  return padZeros(ctx, dY, ctx.dtype(x), rank, all, begin, end);
}

function scatterBack(ctx: GradContext, dY: string): string {
  const b = ctx.b;
  if (ctx.opset < 11) needsOpset(ctx, 11, `Slice node '${ctx.node.name}': the gradient of a slice with steps or run-time axes (Range, ScatterND)`);
  const x = ctx.I(0);
  const size = b.op('Size', [x]);
  const flat = b.op('Range', [b.constInt64([0], []), size, b.constInt64([1], [])]);
  const index = reshapeLike(ctx, flat, x);
  const taken = b.op('Slice', [index, ...ctx.node.input.slice(1)]);
  const zeros = zerosOfShape(ctx, b.op('Reshape', [size, b.constInt64([1])]), ctx.dtype(x), 1);
  const scattered = b.op('ScatterND', [zeros, unsqueeze(ctx, taken, [-1]), dY]);
  return reshapeLike(ctx, scattered, x);
}
