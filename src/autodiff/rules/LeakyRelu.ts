/** LeakyRelu: dX = dY where X > 0, else alpha · dY (alpha defaults to 0.01). */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { scalarOf, select } from '../../onnx/ops.ts';

export const leakyReluGrad: GradRule = {
  opType: 'LeakyRelu',
  grad(ctx) {
    const dY = ctx.dY;
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const alpha = attrFloat(ctx.node, 'alpha', 0.01);
    const positive = b.op('Greater', [x, scalarOf(ctx, 0, dt)]);
    return [select(ctx, positive, dY, b.op('Mul', [dY, scalarOf(ctx, alpha, dt)]), dt)];
  },
};
