/**
 * BatchNormalization in inference mode (running mean and variance, inputs 3-4, are
 * stop-gradient edges). Per channel c (axis 1), with inv = 1/√(var + ε):
 *   Y = (X − mean)·inv·γ + β
 *   dX = dY·γ·inv,  dγ = Σ dY·(X − mean)·inv,  dβ = Σ dY   (sums over every axis but 1)
 * Scale/bias and mean/var may have their own float types (opset 15); the arithmetic runs in X's
 * type and each gradient is cast back to its input's type. training_mode=1 (batch statistics)
 * is not supported.
 */
import type { GradRule } from '../rule.ts';
import { attrFloat, attrInt } from '../../onnx/attributes.ts';
import { reduce, scalarOf, unsqueeze } from '../../onnx/ops.ts';
import { unsupported } from './shared/helpers.ts';

export const batchNormalizationGrad: GradRule = {
  opType: 'BatchNormalization',
  differentiableInputs: [0, 1, 2],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    if (attrInt(ctx.node, 'training_mode', 0) === 1) unsupported(ctx, 'training_mode=1 (batch statistics)');
    const b = ctx.b;
    const x = ctx.I(0);
    const r = ctx.rank(x);
    const dt = ctx.dtype(x);
    const trailing = Array.from({ length: Math.max(0, r - 2) }, (_, i) => i + 1);
    const perChannel = (v: string) => unsqueeze(ctx, v, trailing); // [C] -> [C, 1, …]
    const asX = (i: number) => (ctx.dtype(ctx.I(i)) === dt ? ctx.I(i) : b.op('Cast', [ctx.I(i)], { to: dt }));
    const backTo = (v: string, i: number) => (ctx.dtype(ctx.I(i)) === dt ? v : b.op('Cast', [v], { to: ctx.dtype(ctx.I(i)) }));
    const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [asX(4), scalarOf(ctx, attrFloat(ctx.node, 'epsilon', 1e-5), dt)])])]);
    const others = [0, ...Array.from({ length: Math.max(0, r - 2) }, (_, i) => i + 2)];
    const out: Array<string | undefined> = [];
    if (ctx.needsGrad(0)) out[0] = b.op('Mul', [dY, perChannel(b.op('Mul', [asX(1), inv]))]);
    if (ctx.needsGrad(1)) {
      const xhat = b.op('Mul', [b.op('Sub', [x, perChannel(asX(3))]), perChannel(inv)]);
      out[1] = backTo(reduce(ctx, 'ReduceSum', b.op('Mul', [dY, xhat]), others, 0), 1);
    }
    if (ctx.needsGrad(2)) out[2] = backTo(reduce(ctx, 'ReduceSum', dY, others, 0), 2);
    return out;
  },
};
