/**
 * Finite-difference checks of the attention-family rules (rules/attention-common.ts and the
 * rules that use it) through onnxruntime 1.30's CPU kernels. The contrib kernels (and ONNX
 * RotaryEmbedding) take float32 only: float32 with eps 1e-2 and atol = rtol = 2e-3 (the helper's
 * float32 defaults) unless a case states otherwise.
 */
import { describe, expect, it } from 'vitest';
import { float } from '../../src/onnx/attributes.ts';
import { gradCheck, type GradCheckCase } from '../helpers/gradcheck.ts';

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
/** Angles' cos and sin for a [maxSeq, half] cache (position p, frequency k). */
const table = (fn: (x: number) => number) => (dims: readonly number[]) =>
  Array.from({ length: numel(dims) }, (_, e) => fn((Math.floor(e / dims[1]!) + 1) * 0.3 * (1 + (e % dims[1]!))));
const cosT = table(Math.cos);
const sinT = table(Math.sin);
/** Position ids [B, S]: batch b starts at b + 1. */
const positions = (dims: readonly number[]) => Array.from({ length: numel(dims) }, (_, e) => Math.floor(e / dims[1]!) + 1 + (e % dims[1]!));

const MS = 'com.microsoft';
const ROTARY: Array<[string, GradCheckCase]> = [
  ['com.microsoft RotaryEmbedding 3-D, position_ids [B, S], dynamic batch and sequence', { op: 'RotaryEmbedding', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [{ name: 'x', dims: [2, 3, 8], altDims: [3, 4, 8] }, { name: 'pos', type: 'int64', dims: [2, 3], altDims: [3, 4], values: positions }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }] }],
  ['com.microsoft RotaryEmbedding interleaved, start offset [1]', { op: 'RotaryEmbedding', domain: MS, dtype: 'float32', attrs: { interleaved: 1 },
    inputs: [{ name: 'x', dims: [2, 3, 8], altDims: [1, 5, 8] }, { name: 'pos', type: 'int64', dims: [1], values: [2] }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }] }],
  ['com.microsoft RotaryEmbedding 4-D [B, N, S, H]', { op: 'RotaryEmbedding', domain: MS, dtype: 'float32',
    inputs: [{ name: 'x', dims: [2, 2, 3, 4], altDims: [1, 2, 5, 4] }, { name: 'pos', type: 'int64', dims: [1], values: [1] }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }] }],
  ['com.microsoft RotaryEmbedding partial rotary_embedding_dim, interleaved', { op: 'RotaryEmbedding', domain: MS, dtype: 'float32', attrs: { num_heads: 2, rotary_embedding_dim: 4, interleaved: 1 },
    inputs: [{ name: 'x', dims: [2, 3, 16] }, { name: 'pos', type: 'int64', dims: [2, 3], values: positions }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }] }],
  ['com.microsoft RotaryEmbedding scale attribute', { op: 'RotaryEmbedding', domain: MS, dtype: 'float32', attrs: { num_heads: 2, scale: float(0.5) },
    inputs: [{ name: 'x', dims: [2, 3, 8] }, { name: 'pos', type: 'int64', dims: [2, 3], values: positions }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }] }],
  ['ONNX RotaryEmbedding 3-D num_heads, position_ids, dynamic', { op: 'RotaryEmbedding', opset: 23, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [{ name: 'x', dims: [2, 3, 8], altDims: [3, 5, 8] }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }, { name: 'pos', type: 'int64', dims: [2, 3], altDims: [3, 5], values: positions }] }],
  ['ONNX RotaryEmbedding 4-D interleaved partial', { op: 'RotaryEmbedding', opset: 23, dtype: 'float32', attrs: { interleaved: 1, rotary_embedding_dim: 4 },
    inputs: [{ name: 'x', dims: [2, 2, 3, 8], altDims: [1, 2, 4, 8] }, { name: 'cos', dims: [8, 2], values: cosT, grad: false }, { name: 'sin', dims: [8, 2], values: sinT, grad: false }, { name: 'pos', type: 'int64', dims: [2, 3], altDims: [1, 4], values: positions }] }],
  ['ONNX RotaryEmbedding without position_ids (tables [B, S, R/2])', { op: 'RotaryEmbedding', opset: 23, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [{ name: 'x', dims: [2, 3, 8], altDims: [1, 4, 8] }, { name: 'cos', dims: [2, 3, 2], altDims: [1, 4, 2], grad: false }, { name: 'sin', dims: [2, 3, 2], altDims: [1, 4, 2], grad: false }] }],
];

const SCATTER: Array<[string, GradCheckCase]> = [
  // write_indices per batch row; float64 (ORT's CPU kernel takes doubles).
  ['ONNX TensorScatter linear, axis -2 (default), write_indices, dynamic batch', { op: 'TensorScatter', opset: 24,
    inputs: [{ name: 'past', dims: [2, 2, 6, 3], altDims: [3, 2, 6, 3] }, { name: 'update', dims: [2, 2, 2, 3], altDims: [3, 2, 2, 3] }, { name: 'w', type: 'int64', dims: [2], altDims: [3], values: (d) => [1, 4, 0].slice(0, d[0]) }] }],
  ['ONNX TensorScatter circular wraps around, axis 1', { op: 'TensorScatter', opset: 24, attrs: { mode: 'circular', axis: 1 },
    inputs: [{ name: 'past', dims: [2, 5, 3] }, { name: 'update', dims: [2, 3, 3] }, { name: 'w', type: 'int64', dims: [2], values: [3, 1] }] }],
  ['ONNX TensorScatter without write_indices, dynamic update length', { op: 'TensorScatter', opset: 24, attrs: { axis: 2 },
    inputs: [{ name: 'past', dims: [2, 2, 6, 4] }, { name: 'update', dims: [2, 2, 2, 4], altDims: [2, 2, 4, 4] }] }],
];

describe('attention-family rules: finite differences through onnxruntime', () => {
  it.each([...ROTARY, ...SCATTER])('%s', async (_label, c) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
  });
});
