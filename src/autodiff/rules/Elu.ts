/** Elu: Y = X if X > 0 else α(eˣ − 1);  dX = dY where X > 0, else dY · (Y + α). */
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf, select } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const eluGrad = elementwiseRule('Elu', (ctx, x, dt) => {
  const { b } = ctx;
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const neg = b.op('Add', [ctx.O(0), scalarOf(ctx, alpha, dt)]);
  return select(ctx, b.op('Greater', [x, scalarOf(ctx, 0, dt)]), scalarOf(ctx, 1, dt), neg, dt);
});

