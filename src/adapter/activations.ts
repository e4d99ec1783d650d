/**
 * The tweaker's activations, twice: as standard ONNX ops with simple gradients (no
 * com.microsoft ops, no Gelu op) and as float JS functions for merge.
 *
 *   gelu      = 0.5·x·(1 + Erf(x / √2))                      (HF "gelu", exact)
 *   gelu_tanh = 0.5·x·(1 + Tanh(√(2/π)·(x + 0.044715·x³)))   (HF "gelu_new" / "gelu_pytorch_tanh")
 *   silu      = x·Sigmoid(x)
 */
import type { GraphBuilder } from '../onnx/builder.ts';
import type { Activation } from './config.ts';

const SQRT2 = Math.SQRT2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Emits `act(x)` and returns the output name. */
export function emitActivation(b: GraphBuilder, act: Activation, x: string): string {
  switch (act) {
    case 'relu':
      return b.op('Relu', [x]);
    case 'tanh':
      return b.op('Tanh', [x]);
    case 'sigmoid':
      return b.op('Sigmoid', [x]);
    case 'silu':
      return b.op('Mul', [x, b.op('Sigmoid', [x])]);
    case 'gelu': {
      const erf = b.op('Erf', [b.op('Div', [x, b.scalar(SQRT2)])]);
      return b.op('Mul', [b.op('Mul', [x, b.op('Add', [erf, b.scalar(1)])]), b.scalar(0.5)]);
    }
    case 'gelu_tanh': {
      const x3 = b.op('Mul', [b.op('Mul', [x, x]), x]);
      const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [x3, b.scalar(0.044715)])]), b.scalar(SQRT_2_OVER_PI)]);
      const t = b.op('Tanh', [inner]);
      return b.op('Mul', [b.op('Mul', [x, b.op('Add', [t, b.scalar(1)])]), b.scalar(0.5)]);
    }
  }
}

/** erf(x) to about 1e-15 (series for |x| < 2.5, continued fraction for erfc beyond). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf x = 2/√π · Σ (-1)^n x^(2n+1) / (n! (2n+1))
    const x2 = ax * ax;
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  if (ax > 6) return x < 0 ? -1 : 1;
  // erfc x = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** The JS form of an activation, applied in place. */
export function applyActivation(act: Activation, a: Float32Array): Float32Array {
  switch (act) {
    case 'relu':
      for (let i = 0; i < a.length; i++) if (a[i]! < 0) a[i] = 0;
      return a;
    case 'tanh':
      for (let i = 0; i < a.length; i++) a[i] = Math.tanh(a[i]!);
      return a;
    case 'sigmoid':
      for (let i = 0; i < a.length; i++) a[i] = 1 / (1 + Math.exp(-a[i]!));
      return a;
    case 'silu':
      for (let i = 0; i < a.length; i++) a[i] = a[i]! / (1 + Math.exp(-a[i]!));
      return a;
    case 'gelu':
      for (let i = 0; i < a.length; i++) a[i] = 0.5 * a[i]! * (1 + erf(a[i]! / SQRT2));
      return a;
    case 'gelu_tanh':
      for (let i = 0; i < a.length; i++) {
        const x = a[i]!;
        a[i] = 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
      }
      return a;
  }
}
