/**
 * GlobalMaxPool: the gradient goes to the spatial positions equal to the maximum, shared evenly
 * among ties: mask = Equal(X, Y), dX = dY · mask / Σ_spatial mask.
 */
import type { GradRule } from '../rule.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { reduce } from '../ops.ts';

export const globalMaxPoolGrad: GradRule = {
  opType: 'GlobalMaxPool',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const half = dt === DT.FLOAT16 || dt === DT.BFLOAT16;
    const f32 = (v: string) => (half ? b.op('Cast', [v], { to: DT.FLOAT }) : v);
    const mask = b.op('Cast', [b.op('Equal', [f32(x), f32(ctx.O(0))])], { to: dt });
    const spatial = Array.from({ length: ctx.rank(x) - 2 }, (_, i) => i + 2);
    const ties = reduce(ctx, 'ReduceSum', mask, spatial, 1);
    return [b.op('Mul', [mask, b.op('Div', [dY, ties])])];
  },
};
