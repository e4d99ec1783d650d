/**
 * Tile (repeats, input 1, is a stop-gradient edge). Y viewed as [r₀, d₀, r₁, d₁, …] holds a copy
 * of X for each (r₀, r₁, …), so dX = ReduceSum(Reshape(dY, [r₀, d₀, r₁, d₁, …]), even axes).
 * The interleaved shape is a constant when repeats and X's dims are static, else it is built at
 * run time from the repeats input and Shape(X).
 */
import type { GradRule } from '../rule.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { reduce, unsqueeze } from '../../onnx/ops.ts';
import { isStatic, shapeOf } from './shared/helpers.ts';

export const tileGrad: GradRule = {
  opType: 'Tile',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const x = ctx.I(0);
    const r = ctx.rank(x);
    if (r === 0) return [dY];
    const reps = ctx.constInts(ctx.I(1));
    const shape = ctx.shape(x);
    let interleaved: string;
    if (reps && isStatic(shape)) {
      if (reps.every((v) => v === 1)) return [dY];
      interleaved = b.constInt64(shape.flatMap((d, i) => [reps[i]!, d]));
    } else {
      const repsCol = unsqueeze(ctx, b.op('Cast', [ctx.I(1)], { to: DT.INT64 }), [1]);
      const dimsCol = unsqueeze(ctx, shapeOf(ctx, x), [1]);
      interleaved = b.op('Reshape', [b.op('Concat', [repsCol, dimsCol], { axis: 1 }), b.constInt64([-1])]);
    }
    const split = b.op('Reshape', [dY, interleaved]);
    return [reduce(ctx, 'ReduceSum', split, Array.from({ length: r }, (_, i) => 2 * i), 0)];
  },
};
