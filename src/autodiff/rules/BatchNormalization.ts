/**
 * BatchNormalization, per channel c (axis 1; with spatial=0, opsets before 9, per activation:
 * every axis but the batch), with inv = 1/√(var + ε):
 *   Y = (X − mean)·inv·γ + β
 * Inference mode (running mean and variance, inputs 3-4, are stop-gradient edges):
 *   dX = dY·γ·inv,  dγ = Σ dY·(X − mean)·inv,  dβ = Σ dY   (sums over the statistics axes)
 * Training mode (training_mode=1 from opset 14; more than one output at opsets 7-13, as ONNX
 * Runtime reads it; is_test=0 before 7): mean and var are the batch statistics (var biased),
 * so with x̂ = (X − μ_B)·inv and g = dY·γ (normalization.ts):
 *   dX = inv·(g − mean(g) − x̂·mean(g·x̂)),  dγ = Σ dY·x̂,  dβ = Σ dY
 * The running-statistics outputs get no gradient (they are state updates, as PyTorch's buffers);
 * the saved mean / saved variance outputs of opsets 7-13 are kernel internals, and a gradient
 * reaching them is refused. Scale/bias and mean/var may have their own float types (opset 15):
 * the arithmetic runs in X's type and each gradient is cast back to its input's type.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrFloat, attrInt } from '../../onnx/attributes.ts';
import { reduce, scalarOf, unsqueeze } from '../../onnx/ops.ts';
import { normalize, normalizedGrad } from './shared/normalization.ts';
import { optionalGO, unsupported } from './shared/helpers.ts';

/** Whether the node computes batch statistics. */
function trainingMode(ctx: GradContext): boolean {
  if (ctx.opset >= 14) return attrInt(ctx.node, 'training_mode', 0) === 1;
  if (ctx.opset >= 7) return ctx.node.output.filter((o) => o).length > 1;
  return attrInt(ctx.node, 'is_test', 0) === 0;
}

export const batchNormalizationGrad: GradRule = {
  opType: 'BatchNormalization',
  differentiableInputs: [0, 1, 2],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (optionalGO(ctx, 3) || optionalGO(ctx, 4)) unsupported(ctx, 'a gradient reaches its saved mean / saved variance outputs (kernel internals of training mode)');
    if (!dY) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    const r = ctx.rank(x);
    const dt = ctx.dtype(x);
    const spatial = ctx.opset >= 9 || attrInt(ctx.node, 'spatial', 1) === 1;
    const trailing = Array.from({ length: Math.max(0, r - 2) }, (_, i) => i + 1);
    // [C] -> [C, 1, …] to broadcast against X; per-activation parameters already have X's shape[1:].
    const perChannel = (v: string) => (spatial ? unsqueeze(ctx, v, trailing) : v);
    const statAxes = spatial ? [0, ...Array.from({ length: Math.max(0, r - 2) }, (_, i) => i + 2)] : [0];
    const asX = (i: number) => (ctx.dtype(ctx.I(i)) === dt ? ctx.I(i) : b.op('Cast', [ctx.I(i)], { to: dt }));
    const backTo = (v: string, i: number) => (ctx.dtype(ctx.I(i)) === dt ? v : b.op('Cast', [v], { to: ctx.dtype(ctx.I(i)) }));
    const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
    const out: Array<string | undefined> = [];
    if (trainingMode(ctx)) {
      const s = normalize(ctx, x, statAxes, eps, dt);
      if (ctx.needsGrad(0)) out[0] = normalizedGrad(ctx, s, b.op('Mul', [dY, perChannel(asX(1))]));
      if (ctx.needsGrad(1)) out[1] = backTo(reduce(ctx, 'ReduceSum', b.op('Mul', [dY, s.xhat]), statAxes, 0), 1);
    } else {
      const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [asX(4), scalarOf(ctx, eps, dt)])])]);
      if (ctx.needsGrad(0)) out[0] = b.op('Mul', [dY, perChannel(b.op('Mul', [asX(1), inv]))]);
      if (ctx.needsGrad(1)) {
        const xhat = b.op('Mul', [b.op('Sub', [x, perChannel(asX(3))]), perChannel(inv)]);
        out[1] = backTo(reduce(ctx, 'ReduceSum', b.op('Mul', [dY, xhat]), statAxes, 0), 1);
      }
    }
    if (ctx.needsGrad(2)) out[2] = backTo(reduce(ctx, 'ReduceSum', dY, statAxes, 0), 2);
    return out;
  },
};
