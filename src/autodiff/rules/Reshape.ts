/**
 * Reshape: dX = Reshape(dY, Shape(X)). The target shape (input 1) is a stop-gradient edge.
 * The shape is a constant when probing found X fully static, else Shape(X) at run time.
 * Flatten, Squeeze and Unsqueeze only change the shape too and share this body (`reshapeBack`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { reshapeLike } from './shared/helpers.ts';

/** Gradient rule body of an op that only reshapes input 0: dY reshaped to X's shape. */
export function reshapeBack(ctx: GradContext): Array<string | undefined> {
  const dY = ctx.dY;
  return [reshapeLike(ctx, dY, ctx.I(0))];
}

export const reshapeGrad: GradRule = { opType: 'Reshape', differentiableInputs: [0], grad: reshapeBack };
