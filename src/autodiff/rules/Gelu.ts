/**
 * Gelu (opset 20), with `approximate`:
 *   none:  Y = x·Φ(x);  dX = dY · (Φ(x) + x·φ(x)),  Φ(x) = ½(1 + erf(x/√2)),  φ(x) = e^(−x²/2)/√(2π)
 *   tanh:  Y = ½x(1 + t),  t = tanh(u),  u = c(x + 0.044715x³),  c = √(2/π)
 *          dX = dY · (½(1 + t) + ½x(1 − t²)·c(1 + 3·0.044715x²))
 */
import type { GradRule } from '../rule.ts';
import { attrString } from '../../onnx/attributes.ts';
import { needsOpset, scalarOf, type Emitter } from '../../onnx/ops.ts';
import { PeanutError } from '../../errors.ts';

/** dGelu(x)/dx as a tensor shaped like x (`approximate` none = erf form, tanh = tanh form). */
export function geluDerivative(e: Emitter, x: string, dt: number, approximate: 'none' | 'tanh'): string {
  const b = e.b;
  const k = (v: number) => scalarOf(e, v, dt);
  if (approximate === 'none') {
    if (e.opset < 9) needsOpset(e, 9, 'the derivative of the exact (erf) GELU (Erf)');
    const cdf = b.op('Mul', [k(0.5), b.op('Add', [k(1), b.op('Erf', [b.op('Mul', [x, k(Math.SQRT1_2)])])])]);
    const pdf = b.op('Mul', [b.op('Exp', [b.op('Mul', [b.op('Mul', [x, x]), k(-0.5)])]), k(1 / Math.sqrt(2 * Math.PI))]);
    return b.op('Add', [cdf, b.op('Mul', [x, pdf])]);
  }
  const c = Math.sqrt(2 / Math.PI);
  return tanhGeluDerivative(e, x, dt, c, 0.044715 * c);
}

/**
 * d/dx of the tanh form ½x(1 + tanh(a·x + c·x³)) with its own constants (ONNX Gelu: a = √(2/π),
 * c = 0.044715·√(2/π); com.microsoft FastGelu: the rounded 0.797885, 0.035677 of its spec):
 *   ½(1 + t) + ½x(1 − t²)(a + 3c·x²),  t = tanh(a·x + c·x³)
 */
export function tanhGeluDerivative(e: Emitter, x: string, dt: number, a: number, c: number): string {
  const b = e.b;
  const k = (v: number) => scalarOf(e, v, dt);
  const x2 = b.op('Mul', [x, x]);
  const u = b.op('Mul', [x, b.op('Add', [k(a), b.op('Mul', [x2, k(c)])])]);
  const t = b.op('Tanh', [u]);
  const du = b.op('Add', [k(a), b.op('Mul', [x2, k(3 * c)])]);
  const left = b.op('Mul', [k(0.5), b.op('Add', [k(1), t])]);
  const right = b.op('Mul', [b.op('Mul', [b.op('Mul', [k(0.5), x]), b.op('Sub', [k(1), b.op('Mul', [t, t])])]), du]);
  return b.op('Add', [left, right]);
}

export const geluGrad: GradRule = {
  opType: 'Gelu',
  grad(ctx) {
    const dY = ctx.dY;
    const approximate = attrString(ctx.node, 'approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new PeanutError('E_UNSUPPORTED_OP', `Gelu node '${ctx.node.name}' has unknown approximate='${approximate}' (expected none or tanh)`);
    }
    const x = ctx.I(0);
    return [ctx.b.op('Mul', [dY, geluDerivative(ctx, x, ctx.dtype(x), approximate)])];
  },
};
