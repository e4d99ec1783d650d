/** ThresholdedRelu: Y = X if X > α else 0;  dX = dY where X > α, else 0. */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { maskGrad, scalarOf } from '../../onnx/ops.ts';

export const thresholdedReluGrad: GradRule = {
  opType: 'ThresholdedRelu',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const above = b.op('Greater', [x, scalarOf(ctx, attrFloat(ctx.node, 'alpha', 1), dt)]);
    return [maskGrad(ctx, above, dY, dt, true)];
  },
};
