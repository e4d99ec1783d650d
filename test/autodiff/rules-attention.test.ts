/**
 * Finite-difference checks of the attention-family rules (rules/attention-common.ts and the
 * rules that use it) through ONNX Runtime 1.30's CPU kernels: ONNX RotaryEmbedding, Attention and
 * TensorScatter, and com.microsoft Attention, MultiHeadAttention, GroupQueryAttention and
 * RotaryEmbedding. The contrib kernels, ONNX RotaryEmbedding and ONNX Attention's kernel take
 * float32 only: float32 with eps 1e-2 and atol = rtol = 2e-3 (the helper's float32 defaults).
 * float64 (eps 1e-6, atol = rtol = 1e-6) for TensorScatter and for ONNX Attention through ONNX
 * Runtime's expansion of its function body. Most cases also run at other batch and sequence
 * sizes with the same graph (altDims: dynamic axes stay dynamic).
 */
import { describe, expect, it } from 'vitest';
import { gradCheck, type GradCheckCase } from '../helpers/gradcheck.ts';
import { ATTENTION_CASES, GQA, MHA, MS_ATTENTION, ROTARY } from './cases-attention.ts';

/** The contrib rules emit only ops valid at the opset of the graph: the same checks at opsets 11 and 13. */
const LOW_OPSET: Array<[string, GradCheckCase]> = [
  ...[11, 13].flatMap((opset) => [
    ...[MS_ATTENTION[1]!, MHA[5]!, GQA[1]!, GQA[5]!, ROTARY[0]!].map(([label, c]): [string, GradCheckCase] => [`${label} (opset ${opset})`, { ...c, opset }]),
  ]),
];

describe('attention-family rules: finite differences through onnxruntime', () => {
  it.each([...ATTENTION_CASES, ...LOW_OPSET])('%s', async (_label, c) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
  });
});
