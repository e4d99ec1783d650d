/**
 * PRelu: Y = X if X > 0 else slope·X (slope broadcast to X).
 *   dX = dY · (X > 0 ? 1 : slope)          dslope = unbroadcast(dY · (X > 0 ? 0 : X), slope)
 */
import type { GradRule } from '../rule.ts';
import { scalarOf, select } from '../../onnx/ops.ts';

export const preluGrad: GradRule = {
  opType: 'PRelu',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const slope = ctx.I(1);
    const dt = ctx.dtype(x);
    const zero = scalarOf(ctx, 0, dt);
    const positive = b.op('Greater', [x, zero]);
    const dX = ctx.needsGrad(0) ? ctx.unbroadcast(b.op('Mul', [dY, select(ctx, positive, scalarOf(ctx, 1, dt), slope, dt)]), x) : undefined;
    const dS = ctx.needsGrad(1) ? ctx.unbroadcast(b.op('Mul', [dY, select(ctx, positive, zero, x, dt)]), slope) : undefined;
    return [dX, dS];
  },
};
