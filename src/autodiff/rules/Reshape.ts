/**
 * Reshape: dX = Reshape(dY, Shape(X)). The target shape (input 1) is a stop-gradient edge.
 * The shape is a constant when probing found X fully static or its dynamic dims are the output's
 * (`shapeFromOutput`), else Shape(X) at run time.
 * Flatten, Squeeze and Unsqueeze only change the shape too and share this body (`reshapeBack`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { reshapeLike } from './shared/helpers.ts';

/** Gradient rule body of an op that only reshapes input 0: dY reshaped to X's shape. */
export function reshapeBack(ctx: GradContext): Array<string | undefined> {
  const dY = ctx.dY;
  const target = shapeFromOutput(ctx);
  return [target ? ctx.b.op('Reshape', [dY, ctx.b.constInt64(target)]) : reshapeLike(ctx, dY, ctx.I(0))];
}

/**
 * X's shape as a constant Reshape target for dY, without Shape(X) (which would keep X alive until
 * the backward reaches this node, only for its shape): static dims as they are, a dynamic dim
 * that is the output's dim at the same position as 0 (Reshape copies it from dY), and at most one
 * other dynamic dim as −1 (inferred from the element count). Undefined when X's shape needs more.
 */
function shapeFromOutput(ctx: GradContext): number[] | undefined {
  const x = ctx.I(0);
  const y = ctx.O(0);
  const xs = ctx.shape(x);
  const yRank = ctx.rank(y);
  let inferred = 0;
  const target: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const d = xs[i];
    if (typeof d === 'number') {
      // 0 would mean "copy"; an empty axis is only safe spelled out where nothing is copied.
      if (d === 0) return undefined;
      target.push(d);
    } else if (i < yRank && ctx.sameDim(x, i, y, i)) target.push(0);
    else if (inferred++ === 0) target.push(-1);
    else return undefined;
  }
  return target;
}

export const reshapeGrad: GradRule = { opType: 'Reshape', differentiableInputs: [0], grad: reshapeBack };
