/** Celu: Y = max(0, X) + min(0, α(e^(X/α) − 1));  dX = dY · (X > 0 ? 1 : e^(X/α)). */
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const celuGrad = elementwiseRule('Celu', (ctx, x, dt) => {
  const { b } = ctx;
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const e = b.op('Exp', [b.op('Div', [x, scalarOf(ctx, alpha, dt)])]);
  return b.op('Where', [b.op('Greater', [x, scalarOf(ctx, 0, dt)]), scalarOf(ctx, 1, dt), e]);
});

