/** Softsign: Y = X / (1 + |X|);  dX = dY / (1 + |X|)². */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const softsignGrad: GradRule = {
  opType: 'Softsign',
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const x = ctx.I(0);
    const d = b.op('Add', [scalarOf(ctx, 1, ctx.dtype(x)), b.op('Abs', [x])]);
    return [b.op('Div', [dY, b.op('Mul', [d, d])])];
  },
};
