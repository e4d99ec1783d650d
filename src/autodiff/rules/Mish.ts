/** Mish: Y = X · tanh(softplus(X));  dX = dY · (t + X · σ(X) · (1 − t²)), t = tanh(softplus(X)). */
import { scalarOf } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const mishGrad = elementwiseRule('Mish', (ctx, x, dt) => {
  const { b } = ctx;
  const t = b.op('Tanh', [b.op('Softplus', [x])]);
  const one = scalarOf(ctx, 1, dt);
  return b.op('Add', [t, b.op('Mul', [b.op('Mul', [x, b.op('Sigmoid', [x])]), b.op('Sub', [one, b.op('Mul', [t, t])])])]);
});

