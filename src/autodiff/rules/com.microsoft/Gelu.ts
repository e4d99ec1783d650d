/**
 * The GELU family of ONNX Runtime's contrib domain (com.microsoft), as ORT's transformer
 * optimizer fuses them, differentiated in standard ops (the *Grad kernels of the contrib domain
 * exist only in training builds). None of them has an attribute except QuickGelu's alpha:
 *   Gelu(X)              = X·Φ(X)                          dX = dY · gelu'(X)
 *   BiasGelu(A, B)       = Gelu(A + B)                     dA = dY · gelu'(A+B),  dB = unbroadcast(dA)
 *   FastGelu(X[, bias])  = ½Z(1 + tanh(0.797885·Z + 0.035677·Z³)),  Z = X (+ bias)
 *                          with the rounded constants of its spec (the function body ORT runs
 *                          for float64 uses them too), not √(2/π) and 0.044715·√(2/π)
 *   QuickGelu(X; alpha = 1.702) = X·σ(αX)                  dX = dY · σ(αX)·(1 + αX·(1 − σ(αX)))
 *   GemmFastGelu(X, W[, bias])  = FastGelu(X·W (+ bias))   (MatMul semantics for X·W)
 *                          dZ = dY · fastgelu'(Z), then dX, dW as for MatMul, dbias = Σ dZ
 */
import type { GradContext, GradRule } from '../../rule.ts';
import { attrFloat } from '../../../onnx/attributes.ts';
import { scalarOf } from '../../../onnx/ops.ts';
import { geluDerivative, tanhGeluDerivative } from '../Gelu.ts';
import { matMulGrads } from '../MatMul.ts';
import { hasInput } from '../shared/helpers.ts';

const MS = 'com.microsoft';
/** FastGelu's constants, as its spec writes them. */
const FAST_A = 0.797885;
const FAST_C = 0.035677;

/** gelu'(z) of the exact (erf) form, or FastGelu's tanh form. */
function derivative(ctx: GradContext, z: string, dt: number, form: 'erf' | 'fast'): string {
  return form === 'erf' ? geluDerivative(ctx, z, dt, 'none') : tanhGeluDerivative(ctx, z, dt, FAST_A, FAST_C);
}

/** Gradient of f(X + bias) for the optional-bias forms. */
function biasedGelu(ctx: GradContext, form: 'erf' | 'fast'): Array<string | undefined> {
  const dY = ctx.GO(0);
  if (!dY) return [];
  const { b } = ctx;
  const x = ctx.I(0);
  const hasBias = hasInput(ctx, 1);
  const z = hasBias ? b.op('Add', [x, ctx.I(1)]) : x;
  const dZ = b.op('Mul', [dY, derivative(ctx, z, ctx.dtype(x), form)]);
  return [ctx.needsGrad(0) ? ctx.unbroadcast(dZ, x) : undefined, hasBias && ctx.needsGrad(1) ? ctx.unbroadcast(dZ, ctx.I(1)) : undefined];
}

export const msGeluGrad: GradRule = { opType: 'Gelu', domain: MS, grad: (ctx) => biasedGelu(ctx, 'erf') };
export const biasGeluGrad: GradRule = { opType: 'BiasGelu', domain: MS, grad: (ctx) => biasedGelu(ctx, 'erf') };
export const fastGeluGrad: GradRule = { opType: 'FastGelu', domain: MS, grad: (ctx) => biasedGelu(ctx, 'fast') };

export const quickGeluGrad: GradRule = {
  opType: 'QuickGelu',
  domain: MS,
  grad(ctx) {
    const dY = ctx.dY;
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

export const gemmFastGeluGrad: GradRule = {
  opType: 'GemmFastGelu',
  domain: MS,
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const { b } = ctx;
    const x = ctx.I(0);
    const w = ctx.I(1);
    const hasBias = hasInput(ctx, 2);
    const product = b.op('MatMul', [x, w]);
    const z = hasBias ? b.op('Add', [product, ctx.I(2)]) : product;
    const dZ = b.op('Mul', [dY, derivative(ctx, z, ctx.dtype(x), 'fast')]);
    const needX = ctx.needsGrad(0);
    const needW = ctx.needsGrad(1);
    const [dX, dW] = needX || needW ? matMulGrads(ctx, { a: x, aShape: ctx.shape(x), b: w, bShape: ctx.shape(w), dY: dZ, yShape: ctx.shape(ctx.O(0)), needA: needX, needB: needW }) : [];
    return [needX ? dX : undefined, needW ? dW : undefined, hasBias && ctx.needsGrad(2) ? ctx.unbroadcast(dZ, ctx.I(2)) : undefined];
  },
};
