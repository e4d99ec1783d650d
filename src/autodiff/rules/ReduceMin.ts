/**
 * ReduceMin: the gradient flows to the elements equal to the result, shared evenly among ties
 * (the subgradient PyTorch's amax/amin use; it is also what central differences measure).
 *   mask = Cast(Equal(X, Yk)), dX = dYk · mask / ReduceSum(mask, axes, keepdims=1)
 * where Yk and dYk are Y and dY with the reduced axes kept. Axes: attribute < 18, input ≥ 18.
 */
import type { GradRule } from '../rule.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { reduce } from '../ops.ts';
import { keepdimsGrad, reduceArg, reduceAxes } from '../shape-helpers.ts';

export const reduceMinGrad: GradRule = {
  opType: 'ReduceMin',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const x = ctx.I(0);
    const axes = reduceAxes(ctx);
    if (axes.kind === 'none') return [dY];
    const dt = ctx.dtype(x);
    const yk = keepdimsGrad(ctx, ctx.O(0), axes);
    // Compare in float32 for half types (not every execution provider has a half Equal).
    const half = dt === DT.FLOAT16 || dt === DT.BFLOAT16;
    const f32 = (v: string) => (half ? ctx.b.op('Cast', [v], { to: DT.FLOAT }) : v);
    const mask = ctx.b.op('Cast', [ctx.b.op('Equal', [f32(x), f32(yk)])], { to: dt });
    const ties = reduce(ctx, 'ReduceSum', mask, reduceArg(axes), 1);
    const share = ctx.b.op('Div', [keepdimsGrad(ctx, dY, axes), ties]);
    return [ctx.b.op('Mul', [mask, share])];
  },
};
