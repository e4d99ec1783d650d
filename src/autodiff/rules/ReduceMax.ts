/**
 * ReduceMax and ReduceMin: the gradient flows to the elements equal to the result, shared evenly
 * among ties (the subgradient PyTorch's amax/amin use; it is also what central differences
 * measure).
 *   mask = Cast(Equal(X, Yk)), dX = dYk · mask / ReduceSum(mask, axes, keepdims=1)
 * where Yk and dYk are Y and dY with the reduced axes kept. Axes: attribute < 18, input ≥ 18.
 * GlobalMaxPool shares the masked split (`tiedShare`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { equalFloat, reduce, type ReduceArg } from '../../onnx/ops.ts';
import { keepdimsGrad, reduceArg, reduceAxes } from './shared/helpers.ts';

/** Gradient rule body of ReduceMax and ReduceMin. */
export function reduceExtremumGrad(ctx: GradContext): Array<string | undefined> {
  const dY = ctx.dY;
  const axes = reduceAxes(ctx);
  if (axes.kind === 'none') return [dY];
  const yk = keepdimsGrad(ctx, ctx.O(0), axes);
  return [tiedShare(ctx, ctx.I(0), yk, keepdimsGrad(ctx, dY, axes), reduceArg(axes))];
}

/**
 * dX where Yk (a max or min of X over `axes`, those axes kept) is reached by dYk: dYk goes to the
 * elements of X equal to Yk, split evenly among ties.
 */
export function tiedShare(ctx: GradContext, x: string, yk: string, dYk: string, axes: ReduceArg): string {
  const b = ctx.b;
  const dt = ctx.dtype(x);
  // Compare in float32 for half types (not every execution provider has a half Equal).
  const half = dt === DT.FLOAT16 || dt === DT.BFLOAT16;
  const f32 = (v: string) => (half ? b.op('Cast', [v], { to: DT.FLOAT }) : v);
  const mask = b.op('Cast', [equalFloat(ctx, f32(x), f32(yk))], { to: dt });
  const ties = reduce(ctx, 'ReduceSum', mask, axes, 1);
  return b.op('Mul', [mask, b.op('Div', [dYk, ties])]);
}

export const reduceMaxGrad: GradRule = { opType: 'ReduceMax', differentiableInputs: [0], grad: reduceExtremumGrad };
