/**
 * Finite-difference checks of the arithmetic, activation, softmax and linear-algebra gradient
 * rules through onnxruntime (see test/helpers/gradcheck.ts). float64 where ORT's CPU kernels take
 * doubles; float32 (eps 1e-2, atol = rtol = 2e-3) where they do not (Erf, Gelu). The cases are
 * in cases-math.ts.
 */
import { describe, expect, it } from 'vitest';
import { gradCheck, randomValues } from '../helpers/gradcheck.ts';
import { MATH_CASES as CASES } from './cases-math.ts';

describe('gradient rules: finite differences through onnxruntime', () => {
  it.each(CASES)('%s', async (_label, c) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
  });

  it('emits no weight gradient for a frozen MatMul weight', async () => {
    const r = await gradCheck({ op: 'MatMul', inputs: [{ name: 'a', dims: [2, 3, 4] }, { name: 'w', dims: [4, 5], constant: true, values: randomValues(20, 11) }] });
    // dA = dY·Wᵀ only: one MatMul (and its Transpose), no Gemm/Reshape for dW
    expect(r.backwardOps.filter((o) => o === 'MatMul' || o === 'Gemm')).toEqual(['MatMul']);
  });
});
