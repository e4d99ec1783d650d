/** HardSwish: Y = X · max(0, min(1, X/6 + ½));  dX = dY · (X < −3 ? 0 : X > 3 ? 1 : X/3 + ½). */
import type { GradRule } from '../rule.ts';
import { scalarOf } from '../ops.ts';

export const hardSwishGrad: GradRule = {
  opType: 'HardSwish',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const k = (v: number) => scalarOf(ctx, v, dt);
    const mid = b.op('Add', [b.op('Div', [x, k(3)]), k(0.5)]);
    const upper = b.op('Where', [b.op('Greater', [x, k(3)]), k(1), mid]);
    const local = b.op('Where', [b.op('Less', [x, k(-3)]), k(0), upper]);
    return [b.op('Mul', [dY, local])];
  },
};
