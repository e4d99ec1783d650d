/**
 * Finite-difference checks of the fused normalisation and activation rules (ONNX Runtime's
 * transformer optimizer and genai model builder: com.microsoft SkipLayerNormalization,
 * SkipSimplifiedLayerNormalization, EmbedLayerNormalization, BiasAdd, GemmFastGelu, the GELU
 * family; SimplifiedLayerNormalization in the default domain) and of ONNX RMSNormalization
 * (opset 23), every form their specs define, several with dynamic batch/sequence sizes (altDims).
 *
 * Precision: float64 where ONNX Runtime 1.30's CPU EP runs the op in double
 * (SimplifiedLayerNormalization, RMSNormalization, FastGelu through its function body;
 * tolerance 1e-6 absolute + relative); float32 where it does not (the com.microsoft kernels:
 * eps 1e-2, tolerance 2e-3 absolute + relative). SimplifiedLayerNormalization's inv_std_var is
 * float32 even for double X, so the float64 cases leave it unweighted and a float32 case weights it.
 * BiasAdd and GemmFastGelu have no CPU kernel in ONNX Runtime 1.30: they are checked through their
 * composed standard-op forward (`runComposed`), in float32, the type their schemas allow.
 *
 * Equivalence: `vjpCompare` runs each rule's vector-Jacobian product against the one of the same
 * computation written in primitive standard ops (ReduceMean, Sub, Sqrt, Gather, Tanh…; not the
 * LayerNormalization op, whose rule shares its math with these) and differentiated by those
 * ops' rules, and the fused forward against the composed one where a kernel exists. The cases
 * are in cases-fused.ts.
 */
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/model.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { buildOpModel, gradCheck, vjpCompare } from '../helpers/gradcheck.ts';
import { FUSED_CASES as CASES } from './cases-fused.ts';

/** Largest FD error / tolerance ratio seen, per op (reported by the last test). */
const worst = new Map<string, { maxErr: number; tolerance: number; dtype: string }>();

describe('fused normalisation and activation rules: finite differences through onnxruntime', () => {
  it.each(CASES)('%s', async (_label, c) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
    const err = Math.max(r.maxErr, r.alt?.maxErr ?? 0);
    const prev = worst.get(c.op);
    if (!prev || err > prev.maxErr) worst.set(c.op, { maxErr: err, tolerance: r.tolerance, dtype: c.dtype ?? 'float64' });
  });

  it('every fused rule has a case above', () => {
    const covered = new Set(CASES.map(([, c]) => c.op));
    const family = ['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization', 'EmbedLayerNormalization', 'BiasAdd', 'GemmFastGelu', 'FastGelu', 'Gelu', 'BiasGelu', 'QuickGelu'];
    expect(family.filter((op) => !covered.has(op))).toEqual([]);
    if (process.env.GRADCHECK_REPORT) console.log(JSON.stringify(Object.fromEntries(worst)));
  });
});

describe('fused rules match the unfused standard-op computation', () => {
  it.each(CASES)('%s', async (_label, c) => {
    const r = await vjpCompare(c);
    // Both sides in the case's precision, round-off differing between the two graphs (measured:
    // up to 2.1e-7 relative in float32, 3.1e-16 in float64).
    const tol = (c.dtype === 'float32' ? 1e-5 : 1e-12) * Math.max(1, r.maxAbs);
    expect(r.maxDiff, JSON.stringify(r.perInput)).toBeLessThanOrEqual(tol);
    // The fused kernels sum in their own order (measured: up to 2.4e-7 in float32, 9.6e-11 in float64).
    if (r.forwardDiff !== undefined) expect(r.forwardDiff).toBeLessThanOrEqual(c.dtype === 'float32' ? 1e-5 : 1e-9);
  });
});

describe('ONNX Runtime 1.30 CPU kernels the checks above rely on', () => {
  // BiasAdd and GemmFastGelu are checked through their composed forward because the CPU EP has
  // no kernel for them; this fails (and the cases should run the real kernel) once it has one.
  it.each([
    ['BiasAdd', [[2, 3, 4], [4], [2, 3, 4]]],
    ['GemmFastGelu', [[2, 4], [4, 3], [3]]],
  ] as const)('EXPECTED FAILURE - %s has no CPU kernel', async (op, dims) => {
    const m = buildOpModel({ op, domain: 'com.microsoft', dtype: 'float32', inputs: dims.map((d, i) => ({ name: `x${i}`, dims: [...d] })) }, () => []);
    await expect(ort.InferenceSession.create(encodeModel(m))).rejects.toThrow(/Could not find an implementation/);
  });
});
