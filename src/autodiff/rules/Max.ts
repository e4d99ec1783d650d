/**
 * Max and Min (variadic, broadcasting): the output gradient goes to the input(s) equal to the
 * result; ties split it evenly (PyTorch's maximum/minimum convention).
 *   m_i = [X_i == Y],  dX_i = unbroadcast(dY · m_i / Σ_j m_j, X_i)
 */
import type { GradContext, GradRule } from '../rule.ts';
import { equalFloat } from '../../onnx/ops.ts';

export function extremumGrad(ctx: GradContext): Array<string | undefined> {
  const dY = ctx.GO(0);
  if (!dY) return [];
  const { b } = ctx;
  const n = ctx.inputCount;
  if (n === 1) return [ctx.needsGrad(0) ? dY : undefined];
  const y = ctx.O(0);
  const dt = ctx.dtype(y);
  const masks = Array.from({ length: n }, (_, i) => b.op('Cast', [equalFloat(ctx, ctx.I(i), y)], { to: dt }));
  const count = b.op('Sum', masks);
  const share = b.op('Div', [dY, count]);
  return masks.map((m, i) => (ctx.needsGrad(i) ? ctx.unbroadcast(b.op('Mul', [share, m]), ctx.I(i)) : undefined));
}

export const maxGrad: GradRule = { opType: 'Max', grad: extremumGrad };
