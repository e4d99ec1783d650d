/**
 * Undoing broadcasting in the backward pass. Shapes come from probing, where each dim is a number
 * or `null` (it varies at run time). Aligning from the right, an axis is summed when `like` has a
 * static 1 there and the gradient does not (a static size > 1 or a dynamic one: if the dynamic
 * size turns out to be 1, the sum is a no-op); the gradient's extra leading axes are summed away.
 * Two dynamic dims are taken to be equal (the model could not have run otherwise unless one of
 * them were 1, and probing never produces a dynamic 1). No Reshape is needed, so no run-time size
 * is ever baked into a constant.
 */
import type { GraphBuilder } from '../onnx/builder.ts';
import { PeanutError } from '../errors.ts';
import type { StaticShape } from './rule.ts';
import { reduce, squeeze } from '../onnx/ops.ts';

/** Which axes of the gradient to sum, and how many leading axes to drop. */
export function broadcastAxes(gradShape: StaticShape, likeShape: StaticShape): { keep: number[]; lead: number } {
  const lead = gradShape.length - likeShape.length;
  if (lead < 0) {
    throw new PeanutError('E_GRAPH', `cannot unbroadcast a rank-${gradShape.length} gradient [${fmt(gradShape)}] to rank-${likeShape.length} [${fmt(likeShape)}]`);
  }
  const keep: number[] = [];
  likeShape.forEach((l, j) => {
    const gdim = gradShape[j + lead];
    if (l === 1 && gdim !== 1) keep.push(j + lead);
  });
  return { keep, lead };
}

function fmt(s: StaticShape): string {
  return s.map((d) => (d === null ? '?' : String(d))).join(', ');
}

/**
 * Sums `grad` (of shape `gradShape`) down to `likeShape`. Returns `grad` itself when nothing
 * needs summing.
 */
export function unbroadcast(b: GraphBuilder, opset: number, grad: string, gradShape: StaticShape, likeShape: StaticShape): string {
  const { keep, lead } = broadcastAxes(gradShape, likeShape);
  const leading = Array.from({ length: lead }, (_, i) => i);
  if (keep.length === 0 && lead === 0) return grad;
  const e = { b, opset };
  if (keep.length === 0) return reduce(e, 'ReduceSum', grad, leading, 0);
  const summed = reduce(e, 'ReduceSum', grad, [...leading, ...keep], 1);
  return lead > 0 ? squeeze(e, summed, leading) : summed;
}
