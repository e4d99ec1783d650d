/**
 * The GELU family of ONNX Runtime's contrib domain (com.microsoft), as ORT's transformer
 * optimizer fuses them, differentiated in standard ops (the *Grad kernels of the contrib domain
 * exist only in training builds):
 *   Gelu(X)              = X·Φ(X)                          dX = dY · gelu'(X)
 *   BiasGelu(A, B)       = Gelu(A + B)                     dA = dY · gelu'(A+B),  dB = unbroadcast(dA)
 *   FastGelu(X[, bias])  = tanh-approximated Gelu(X + bias)
 *   QuickGelu(X; alpha)  = X·σ(αX)                         dX = dY · σ(αX)·(1 + αX·(1 − σ(αX)))
 */
import type { GradContext, GradRule } from '../../rule.ts';
import { attrFloat } from '../../../onnx/attributes.ts';
import { scalarOf } from '../../../onnx/ops.ts';
import { geluDerivative } from '../Gelu.ts';

const MS = 'com.microsoft';

/** Gradient of f(X + bias) for the optional-bias forms. */
function biasedGelu(ctx: GradContext, approximate: 'none' | 'tanh'): Array<string | undefined> {
  const dY = ctx.GO(0);
  if (!dY) return [];
  const { b } = ctx;
  const x = ctx.I(0);
  const hasBias = ctx.inputCount > 1 && ctx.I(1) !== '';
  const z = hasBias ? b.op('Add', [x, ctx.I(1)]) : x;
  const dZ = b.op('Mul', [dY, geluDerivative(ctx, z, ctx.dtype(x), approximate)]);
  return [ctx.needsGrad(0) ? ctx.unbroadcast(dZ, x) : undefined, hasBias && ctx.needsGrad(1) ? ctx.unbroadcast(dZ, ctx.I(1)) : undefined];
}

export const msGeluGrad: GradRule = { opType: 'Gelu', domain: MS, grad: (ctx) => biasedGelu(ctx, 'none') };
export const biasGeluGrad: GradRule = { opType: 'BiasGelu', domain: MS, grad: (ctx) => biasedGelu(ctx, 'none') };
export const fastGeluGrad: GradRule = { opType: 'FastGelu', domain: MS, grad: (ctx) => biasedGelu(ctx, 'tanh') };

export const quickGeluGrad: GradRule = {
  opType: 'QuickGelu',
  domain: MS,
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const alpha = attrFloat(ctx.node, 'alpha', 1.702);
    const ax = b.op('Mul', [x, scalarOf(ctx, alpha, dt)]);
    const s = b.op('Sigmoid', [ax]);
    const one = scalarOf(ctx, 1, dt);
    const local = b.op('Mul', [s, b.op('Add', [one, b.op('Mul', [ax, b.op('Sub', [one, s])])])]);
    return [b.op('Mul', [dY, local])];
  },
};
