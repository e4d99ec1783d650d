/**
 * Pow: Y = A^P (broadcasting). Base only: dA = unbroadcast(dY · P · A^(P−1), A); a constant scalar
 * P of 1, 2, 3 or ½ becomes plain products (dY, 2A, 3A², ½/Y). A gradient
 * through the exponent is not supported (as in ONNX Runtime's training builder) and fails loudly
 * rather than being dropped.
 */
import type { GradRule } from '../rule.ts';
import { PeanutError } from '../../errors.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const powGrad: GradRule = {
  opType: 'Pow',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    if (ctx.needsGrad(1)) {
      throw new PeanutError('E_UNSUPPORTED_OP', `Pow node '${ctx.node.name}': the exponent '${ctx.I(1)}' depends on a trained parameter; gradients through a Pow exponent are not supported (rewrite it as Exp(P·Log(A)))`);
    }
    if (!ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const a = ctx.I(0);
    const dt = ctx.dtype(a);
    // A constant scalar exponent (LayerNorm's x², gelu_new's x³, RMSNorm): plain products.
    const pc = ctx.shape(ctx.I(1)).length === 0 ? ctx.constInts(ctx.I(1)) : undefined;
    if (pc && pc.length === 1 && [1, 2, 3, 0.5].includes(pc[0]!)) {
      const p = pc[0]!;
      if (p === 1) return [ctx.unbroadcast(dY, a)];
      const local =
        p === 2
          ? b.op('Mul', [a, scalarOf(ctx, 2, dt)])
          : p === 3
            ? b.op('Mul', [b.op('Mul', [a, a]), scalarOf(ctx, 3, dt)])
            : b.op('Div', [scalarOf(ctx, 0.5, dt), ctx.O(0)]);
      return [ctx.unbroadcast(b.op('Mul', [dY, local]), a)];
    }
    let p = ctx.I(1);
    if (ctx.dtype(p) !== dt) p = b.op('Cast', [p], { to: dt });
    const pm1 = b.op('Sub', [p, scalarOf(ctx, 1, dt)]);
    const local = b.op('Mul', [p, b.op('Pow', [a, pm1])]);
    return [ctx.unbroadcast(b.op('Mul', [dY, local]), a)];
  },
};
