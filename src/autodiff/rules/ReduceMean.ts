/**
 * ReduceMean: dX = Expand(keepdims ? dY : Unsqueeze(dY, axes), X's shape) (see expandReduced) / n, where n is the
 * number of elements averaged (a constant when the reduced dims are static, else
 * Size(X) / Size(Y) at run time). Axes are an attribute before opset 18 and input 1 from 18.
 * GlobalAveragePool shares the spreading (`meanGrad`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { scalarOf } from '../../onnx/ops.ts';
import { expandReduced, keepdimsGrad, reduceAxes, reducedAxisList } from './shared/helpers.ts';

export const reduceMeanGrad: GradRule = {
  opType: 'ReduceMean',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const axes = reduceAxes(ctx);
    if (axes.kind === 'none') return [dY];
    return [meanGrad(ctx, keepdimsGrad(ctx, dY, axes), reducedAxisList(axes, ctx.rank(ctx.I(0))))];
  },
};

/**
 * dX where Y (input 0 averaged over `reduced`, those axes kept; undefined where they are only
 * known at run time) is reached by dYk: dYk expanded to X's shape, divided by the count.
 */
export function meanGrad(ctx: GradContext, dYk: string, reduced: readonly number[] | undefined): string {
  const b = ctx.b;
  const x = ctx.I(0);
  const dt = ctx.dtype(x);
  const expanded = expandReduced(ctx, dYk, reduced);
  const shape = ctx.shape(x);
  const dims = reduced?.map((a) => shape[a]);
  if (dims && dims.every((d) => typeof d === 'number')) {
    const n = (dims as number[]).reduce((p, d) => p * d, 1);
    return n === 1 ? expanded : b.op('Mul', [expanded, scalarOf(ctx, 1 / n, dt)]);
  }
  const count = b.op('Div', [b.op('Size', [x]), b.op('Size', [ctx.O(0)])]);
  return b.op('Div', [expanded, b.op('Cast', [count], { to: dt })]);
}
