/**
 * ReduceMean: dX = Expand(keepdims ? dY : Unsqueeze(dY, axes), Shape(X)) / n, where n is the
 * number of elements averaged (a constant when the reduced dims are static, else
 * Size(X) / Size(Y) at run time). Axes are an attribute before opset 18 and input 1 from 18.
 */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../ops.ts';
import { keepdimsGrad, reduceAxes, shapeOf } from '../shape-helpers.ts';

export const reduceMeanGrad: GradRule = {
  opType: 'ReduceMean',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const x = ctx.I(0);
    const axes = reduceAxes(ctx);
    if (axes.kind === 'none') return [dY];
    const dt = ctx.dtype(x);
    const expanded = ctx.b.op('Expand', [keepdimsGrad(ctx, dY, axes), shapeOf(ctx, x)]);
    const shape = ctx.shape(x);
    const reduced = axes.kind === 'all' ? shape.map((_, i) => i) : axes.kind === 'const' ? axes.axes : undefined;
    const dims = reduced?.map((a) => shape[a]);
    if (dims && dims.every((d) => typeof d === 'number')) {
      const n = (dims as number[]).reduce((p, d) => p * d, 1);
      return [n === 1 ? expanded : ctx.b.op('Mul', [expanded, scalarOf(ctx, 1 / n, dt)])];
    }
    const count = ctx.b.op('Div', [ctx.b.op('Size', [x]), ctx.b.op('Size', [ctx.O(0)])]);
    return [ctx.b.op('Div', [expanded, ctx.b.op('Cast', [count], { to: dt })])];
  },
};
