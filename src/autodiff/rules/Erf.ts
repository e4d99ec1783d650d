/** Erf: dX = dY · (2/√π) · exp(−X²). */
import { scalarOf } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const erfGrad = elementwiseRule('Erf', (ctx, x, dt) => {
  const { b } = ctx;
  const e = b.op('Exp', [b.op('Neg', [b.op('Mul', [x, x])])]);
  return b.op('Mul', [e, scalarOf(ctx, 2 / Math.sqrt(Math.PI), dt)]);
});

