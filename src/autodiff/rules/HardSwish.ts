/** HardSwish: Y = X · max(0, min(1, X/6 + ½));  dX = dY · (X < −3 ? 0 : X > 3 ? 1 : X/3 + ½). */
import { scalarOf } from '../../onnx/ops.ts';
import { elementwiseRule } from './shared/helpers.ts';

export const hardSwishGrad = elementwiseRule('HardSwish', (ctx, x, dt) => {
  const { b } = ctx;
  const k = (v: number) => scalarOf(ctx, v, dt);
  const mid = b.op('Add', [b.op('Div', [x, k(3)]), k(0.5)]);
  const upper = b.op('Where', [b.op('Greater', [x, k(3)]), k(1), mid]);
  return b.op('Where', [b.op('Less', [x, k(-3)]), k(0), upper]);
});

