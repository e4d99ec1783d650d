/** HardSigmoid: Y = max(0, min(1, αX + β));  dX = dY · α where 0 < αX + β < 1, else 0. */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { maskGrad, scalarOf } from '../../onnx/ops.ts';

export const hardSigmoidGrad: GradRule = {
  opType: 'HardSigmoid',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const alpha = attrFloat(ctx.node, 'alpha', 0.2);
    const beta = attrFloat(ctx.node, 'beta', 0.5);
    const z = b.op('Add', [b.op('Mul', [x, scalarOf(ctx, alpha, dt)]), scalarOf(ctx, beta, dt)]);
    const inside = b.op('And', [b.op('Greater', [z, scalarOf(ctx, 0, dt)]), b.op('Less', [z, scalarOf(ctx, 1, dt)])]);
    return [maskGrad(ctx, inside, b.op('Mul', [dY, scalarOf(ctx, alpha, dt)]), dt, true)];
  },
};
