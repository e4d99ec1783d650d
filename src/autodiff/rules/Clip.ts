/**
 * Clip: dX = dY where min ≤ X ≤ max, else 0 (PyTorch's clamp convention: the bounds pass the
 * gradient). min/max are attributes before opset 11 and optional inputs 1, 2 after; they are
 * stop-gradient edges.
 */
import type { GradRule } from '../rule.ts';
import { attrFloat } from '../../onnx/attributes.ts';
import { maskGrad, scalarOf } from '../../onnx/ops.ts';

export const clipGrad: GradRule = {
  opType: 'Clip',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    let lo: string | undefined;
    let hi: string | undefined;
    if (ctx.opset < 11) {
      const mn = attrFloat(ctx.node, 'min');
      const mx = attrFloat(ctx.node, 'max');
      if (mn !== undefined) lo = scalarOf(ctx, mn, dt);
      if (mx !== undefined) hi = scalarOf(ctx, mx, dt);
    } else {
      if (ctx.inputCount > 1 && ctx.I(1)) lo = ctx.I(1);
      if (ctx.inputCount > 2 && ctx.I(2)) hi = ctx.I(2);
    }
    const conds: string[] = [];
    if (lo) conds.push(b.op('Not', [b.op('Less', [x, lo])]));
    if (hi) conds.push(b.op('Not', [b.op('Greater', [x, hi])]));
    if (conds.length === 0) return [dY];
    const inside = conds.length === 2 ? b.op('And', [conds[0]!, conds[1]!]) : conds[0]!;
    return [maskGrad(ctx, inside, dY, dt, true)];
  },
};
