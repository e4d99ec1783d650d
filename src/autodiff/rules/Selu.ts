/** Selu: Y = γ·X if X > 0 else γ·α(eˣ − 1);  dX = dY · (X > 0 ? γ : Y + γα). */
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf, select } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const seluGrad = elementwiseRule('Selu', (ctx, x, dt) => {
  const { b } = ctx;
  const alpha = attrFloat(ctx.node, 'alpha', 1.67326319217681884765625);
  const gamma = attrFloat(ctx.node, 'gamma', 1.05070102214813232421875);
  const neg = b.op('Add', [ctx.O(0), scalarOf(ctx, gamma * alpha, dt)]);
  return select(ctx, b.op('Greater', [x, scalarOf(ctx, 0, dt)]), scalarOf(ctx, gamma, dt), neg, dt);
});

