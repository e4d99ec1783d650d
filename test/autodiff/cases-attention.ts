/**
 * Finite-difference cases of the attention-family rules (rules/shared/attention.ts and the rules
 * that use it): ONNX RotaryEmbedding, Attention and TensorScatter, and com.microsoft Attention,
 * MultiHeadAttention, GroupQueryAttention and RotaryEmbedding. Run by rules-attention.test.ts, and
 * at each op's first opset by rules-opset.test.ts.
 */
import { float } from '../../src/onnx/attributes.ts';
import type { GradCheckCase } from '../helpers/gradcheck.ts';

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
/** Angles' cos and sin for a [maxSeq, half] cache (position p, frequency k). */
const table = (fn: (x: number) => number) => (dims: readonly number[]) =>
  Array.from({ length: numel(dims) }, (_, e) => fn((Math.floor(e / dims[1]!) + 1) * 0.3 * (1 + (e % dims[1]!))));
const cosT = table(Math.cos);
const sinT = table(Math.sin);
/** Position ids [B, S]: batch b starts at b + 1. */
const positions = (dims: readonly number[]) => Array.from({ length: numel(dims) }, (_, e) => Math.floor(e / dims[1]!) + 1 + (e % dims[1]!));

const MS = 'com.microsoft';
export const ROTARY: Array<[string, GradCheckCase]> = [
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

export const SCATTER: Array<[string, GradCheckCase]> = [
  // write_indices per batch row; float64 (ORT's CPU kernel takes doubles).
  ['ONNX TensorScatter linear, axis -2 (default), write_indices, dynamic batch', { op: 'TensorScatter', opset: 24,
    inputs: [{ name: 'past', dims: [2, 2, 6, 3], altDims: [3, 2, 6, 3] }, { name: 'update', dims: [2, 2, 2, 3], altDims: [3, 2, 2, 3] }, { name: 'w', type: 'int64', dims: [2], altDims: [3], values: (d) => [1, 4, 0].slice(0, d[0]) }] }],
  ['ONNX TensorScatter circular wraps around, axis 1', { op: 'TensorScatter', opset: 24, attrs: { mode: 'circular', axis: 1 },
    inputs: [{ name: 'past', dims: [2, 5, 3] }, { name: 'update', dims: [2, 3, 3] }, { name: 'w', type: 'int64', dims: [2], values: [3, 1] }] }],
  ['ONNX TensorScatter without write_indices, dynamic update length', { op: 'TensorScatter', opset: 24, attrs: { axis: 2 },
    inputs: [{ name: 'past', dims: [2, 2, 6, 4] }, { name: 'update', dims: [2, 2, 2, 4], altDims: [2, 2, 4, 4] }] }],
];

/** A bool mask [.., S, T] hiding keys j ≡ i + 1 (mod T): never a whole row. */
const boolMask = (dims: readonly number[]) => {
  const T = dims[dims.length - 1]!;
  const S = dims[dims.length - 2]!;
  return Array.from({ length: numel(dims) }, (_, e) => (e % T === (Math.floor(e / T) % S + 1) % T ? 0 : 1));
};
export const ONNX_ATTENTION: Array<[string, GradCheckCase]> = [
  ['ONNX Attention 4-D, dynamic batch and sequence', { op: 'Attention', opset: 23, dtype: 'float32',
    inputs: [{ name: 'q', dims: [2, 2, 3, 4], altDims: [3, 2, 5, 4] }, { name: 'k', dims: [2, 2, 3, 4], altDims: [3, 2, 5, 4] }, { name: 'v', dims: [2, 2, 3, 4], altDims: [3, 2, 5, 4] }] }],
  ['ONNX Attention 4-D GQA (4 query, 2 kv heads), cross lengths, v head size 6, scale', { op: 'Attention', opset: 23, dtype: 'float32', attrs: { scale: float(0.3) },
    inputs: [{ name: 'q', dims: [2, 4, 3, 4], altDims: [1, 4, 2, 4] }, { name: 'k', dims: [2, 2, 5, 4], altDims: [1, 2, 6, 4] }, { name: 'v', dims: [2, 2, 5, 6], altDims: [1, 2, 6, 6] }] }],
  ['ONNX Attention 3-D q_num_heads/kv_num_heads (MQA), bool mask [B, 1, S, T]', { op: 'Attention', opset: 23, dtype: 'float32', attrs: { q_num_heads: 4, kv_num_heads: 1 },
    inputs: [{ name: 'q', dims: [2, 3, 16], altDims: [3, 4, 16] }, { name: 'k', dims: [2, 5, 4], altDims: [3, 6, 4] }, { name: 'v', dims: [2, 5, 4], altDims: [3, 6, 4] },
      { name: 'm', type: 'bool', dims: [2, 1, 3, 5], altDims: [3, 1, 4, 6], values: boolMask }] }],
  ['ONNX Attention float mask [S, T] gets its gradient (trainable bias), GQA', { op: 'Attention', opset: 23, dtype: 'float32',
    inputs: [{ name: 'q', dims: [2, 4, 3, 4] }, { name: 'k', dims: [2, 2, 3, 4] }, { name: 'v', dims: [2, 2, 3, 4] }, { name: 'bias', dims: [3, 3] }] }],
  ['ONNX Attention per-head float mask [1, N, S, T]', { op: 'Attention', opset: 23, dtype: 'float32',
    inputs: [{ name: 'q', dims: [2, 4, 3, 4] }, { name: 'k', dims: [2, 2, 3, 4] }, { name: 'v', dims: [2, 2, 3, 4] }, { name: 'bias', dims: [1, 4, 3, 3] }] }],
  ['ONNX Attention past_key/past_value, is_causal, present outputs weighted', { op: 'Attention', opset: 23, dtype: 'float32', attrs: { is_causal: 1 }, outputs: 3,
    inputs: [{ name: 'q', dims: [2, 2, 3, 4], altDims: [1, 2, 2, 4] }, { name: 'k', dims: [2, 2, 3, 4], altDims: [1, 2, 2, 4] }, { name: 'v', dims: [2, 2, 3, 4], altDims: [1, 2, 2, 4] }, { name: '', dims: [] },
      { name: 'pk', dims: [2, 2, 2, 4], altDims: [1, 2, 4, 4], grad: false }, { name: 'pv', dims: [2, 2, 2, 4], altDims: [1, 2, 4, 4], grad: false }] }],
  ['ONNX Attention 3-D causal with past (bottom-right aligned), GQA', { op: 'Attention', opset: 24, dtype: 'float32', attrs: { is_causal: 1, q_num_heads: 2, kv_num_heads: 1 }, outputs: 3,
    inputs: [{ name: 'q', dims: [1, 3, 8] }, { name: 'k', dims: [1, 3, 4] }, { name: 'v', dims: [1, 3, 4] }, { name: '', dims: [] }, { name: 'pk', dims: [1, 1, 2, 4], grad: false }, { name: 'pv', dims: [1, 1, 2, 4], grad: false }] }],
  ...[0, 1, 2, 3].map((mode): [string, GradCheckCase] => [`ONNX Attention softcap, qk_matmul_output_mode ${mode} output weighted`, { op: 'Attention', opset: 23, dtype: 'float32',
    attrs: { softcap: float(1.5), qk_matmul_output_mode: mode }, outputs: 4, skipOutputs: [1, 2],
    inputs: [{ name: 'q', dims: [2, 2, 3, 4] }, { name: 'k', dims: [2, 2, 4, 4] }, { name: 'v', dims: [2, 2, 4, 4] }, { name: 'bias', dims: [3, 4] }] }]),
  ['ONNX Attention softmax_precision double on float32', { op: 'Attention', opset: 23, dtype: 'float32', attrs: { softmax_precision: 11 },
    inputs: [{ name: 'q', dims: [2, 2, 3, 4] }, { name: 'k', dims: [2, 2, 3, 4] }, { name: 'v', dims: [2, 2, 3, 4] }] }],
  ['ONNX Attention opset 24 nonpad_kv_seqlen with is_causal (external cache)', { op: 'Attention', opset: 24, dtype: 'float32', attrs: { is_causal: 1 },
    inputs: [{ name: 'q', dims: [2, 2, 2, 4] }, { name: 'k', dims: [2, 2, 5, 4] }, { name: 'v', dims: [2, 2, 5, 4] }, { name: '', dims: [] }, { name: '', dims: [] }, { name: '', dims: [] },
      { name: 'np', type: 'int64', dims: [2], values: [3, 5] }] }],
  ['ONNX Attention a row with every key hidden gives zero output and gradient', { op: 'Attention', opset: 23, dtype: 'float32',
    inputs: [{ name: 'q', dims: [1, 1, 2, 2] }, { name: 'k', dims: [1, 1, 3, 2] }, { name: 'v', dims: [1, 1, 3, 2] }, { name: 'm', type: 'bool', dims: [2, 3], values: [1, 0, 1, 0, 0, 0] }] }],
  // float64 through ONNX Runtime's expansion of the Attention function (its CPU kernel is float32).
  ['ONNX Attention float64 (function body), GQA with float mask', { op: 'Attention', opset: 23,
    inputs: [{ name: 'q', dims: [2, 4, 3, 4], altDims: [1, 4, 5, 4] }, { name: 'k', dims: [2, 2, 3, 4], altDims: [1, 2, 5, 4] }, { name: 'v', dims: [2, 2, 3, 4], altDims: [1, 2, 5, 4] }, { name: 'bias', dims: [1, 1, 3, 3], altDims: [1, 1, 5, 5] }] }],
  ['ONNX Attention float64 opset 24 float mask shorter than the keys (padded with -inf)', { op: 'Attention', opset: 24,
    inputs: [{ name: 'q', dims: [2, 2, 3, 4] }, { name: 'k', dims: [2, 2, 5, 4] }, { name: 'v', dims: [2, 2, 5, 4] }, { name: 'bias', dims: [3, 3] }] }],
];

/** A 0/1 key mask [B, T] (or [B, S, T]) hiding key j ≡ b + 1 (mod T) of each row: never a whole row. */
const rawMask = (dims: readonly number[]) => {
  const T = dims[dims.length - 1]!;
  const rows = numel(dims) / T;
  return Array.from({ length: numel(dims) }, (_, e) => (e % T === (Math.floor(e / T) % rows + 1) % T ? 0 : 1));
};
const x = (dims: number[], altDims?: number[]) => ({ name: 'x', dims, ...(altDims ? { altDims } : {}) });
const weights = (din: number, dout: number) => [{ name: 'w', dims: [din, dout] }, { name: 'bias', dims: [dout] }];
export const MS_ATTENTION: Array<[string, GradCheckCase]> = [
  ['com.microsoft Attention, dynamic batch and sequence (x, weights, bias)', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [x([2, 3, 8], [3, 5, 8]), ...weights(8, 24)] }],
  ['com.microsoft Attention mask_index [B] (end positions), unidirectional, dynamic', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1 },
    inputs: [x([2, 4, 8], [3, 5, 8]), ...weights(8, 24), { name: 'mask', type: 'int32', dims: [2], altDims: [3], values: (d) => [3, 4, 2].slice(0, d[0]) }] }],
  ['com.microsoft Attention mask_index [2B] (end and start positions)', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [x([2, 4, 8]), ...weights(8, 24), { name: 'mask', type: 'int32', dims: [4], values: [4, 3, 1, 0] }] }],
  ['com.microsoft Attention raw mask [B, T], mask_filter_value -3 (hidden keys still count)', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, mask_filter_value: float(-3) },
    inputs: [x([2, 3, 8], [3, 4, 8]), ...weights(8, 24), { name: 'mask', type: 'int32', dims: [2, 3], altDims: [3, 4], values: rawMask }] }],
  ['com.microsoft Attention raw mask [B, T] plus unidirectional, mask_filter_value -3', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1, mask_filter_value: float(-3) },
    inputs: [x([2, 3, 8]), ...weights(8, 24), { name: 'mask', type: 'int32', dims: [2, 3], values: rawMask }] }],
  ['com.microsoft Attention unidirectional alone, mask_filter_value -3', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1, mask_filter_value: float(-3) },
    inputs: [x([2, 3, 8]), ...weights(8, 24)] }],
  ['com.microsoft Attention mask [B, S, T] plus unidirectional, mask_filter_value -2 (causal adds -10000 regardless)', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1, mask_filter_value: float(-2) },
    inputs: [x([2, 3, 8]), ...weights(8, 24), { name: 'mask', type: 'int32', dims: [2, 3, 3], values: rawMask }] }],
  ['com.microsoft Attention past and present (weighted), unidirectional, dynamic past length', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1 }, outputs: 2,
    inputs: [x([2, 3, 8], [2, 2, 8]), ...weights(8, 24), { name: '', dims: [] }, { name: 'past', dims: [2, 2, 2, 2, 4], altDims: [2, 2, 2, 4, 4], grad: false }] }],
  ['com.microsoft Attention attention_bias [1, N, S, T] (trainable), scale', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, scale: float(0.4) },
    inputs: [x([2, 3, 8]), ...weights(8, 24), { name: '', dims: [] }, { name: '', dims: [] }, { name: 'ab', dims: [1, 2, 3, 3] }] }],
  ['com.microsoft Attention qkv_hidden_sizes with a narrower V, attention_bias [B, 1, S, T]', { op: 'Attention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, qkv_hidden_sizes: [8, 8, 4] },
    inputs: [x([2, 3, 6]), ...weights(6, 20), { name: '', dims: [] }, { name: '', dims: [] }, { name: 'ab', dims: [2, 1, 3, 3] }] }],
];

const qkv = (S: number[], L: number[], altS?: number[], altL?: number[]) => [
  { name: 'q', dims: S, ...(altS ? { altDims: altS } : {}) }, { name: 'k', dims: L, ...(altL ? { altDims: altL } : {}) }, { name: 'v', dims: L, ...(altL ? { altDims: altL } : {}) }];
/** 1 where key j of [B, N, S, T] scores is visible (key mask [B, T] and causal with `past` cached keys), else 0. */
const causalVisible = (dims: readonly number[], keyMask: number[], past: number) => {
  const [, N, S, T] = dims as [number, number, number, number];
  return Array.from({ length: numel(dims) }, (_, e) => {
    const j = e % T;
    const i = Math.floor(e / T) % S;
    const bIdx = Math.floor(e / (T * S * N));
    return keyMask[bIdx * T + j]! > 0 && j <= past + i ? 1 : 0;
  });
};
export const MHA: Array<[string, GradCheckCase]> = [
  ['com.microsoft MultiHeadAttention self, bias, dynamic batch and sequence', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [...qkv([2, 3, 8], [2, 3, 8], [3, 4, 8], [3, 4, 8]), { name: 'bias', dims: [24] }] }],
  ['com.microsoft MultiHeadAttention cross, narrower V, key_padding_mask [B]', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [{ name: 'q', dims: [2, 3, 8], altDims: [3, 2, 8] }, { name: 'k', dims: [2, 5, 8], altDims: [3, 4, 8] }, { name: 'v', dims: [2, 5, 4], altDims: [3, 4, 4] }, { name: '', dims: [] },
      { name: 'kpm', type: 'int32', dims: [2], altDims: [3], values: (d) => [4, 5, 3].slice(0, d[0]) }] }],
  ['com.microsoft MultiHeadAttention key_padding_mask [B, L], unidirectional, mask_filter_value -3', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1, mask_filter_value: float(-3) },
    inputs: [...qkv([2, 3, 8], [2, 3, 8]), { name: '', dims: [] }, { name: 'kpm', type: 'int32', dims: [2, 3], values: rawMask }] }],
  ['com.microsoft MultiHeadAttention key_padding_mask [B, S, T], bias', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, mask_filter_value: float(-2) },
    inputs: [...qkv([2, 3, 8], [2, 4, 8]), { name: 'bias', dims: [24] }, { name: 'kpm', type: 'int32', dims: [2, 3, 4], values: rawMask }] }],
  ['com.microsoft MultiHeadAttention key/value already in heads [B, N, L, H], bias', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [{ name: 'q', dims: [2, 3, 8] }, { name: 'k', dims: [2, 2, 5, 4] }, { name: 'v', dims: [2, 2, 5, 4] }, { name: 'bias', dims: [24] }] }],
  ['com.microsoft MultiHeadAttention past and present weighted, key_padding_mask [B, T], unidirectional', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1 },
    outputs: 3,
    inputs: [...qkv([2, 3, 8], [2, 3, 8], [2, 2, 8], [2, 2, 8]), { name: '', dims: [] }, { name: 'kpm', type: 'int32', dims: [2, 5], altDims: [2, 5], values: rawMask }, { name: '', dims: [] },
      { name: 'pk', dims: [2, 2, 2, 4], altDims: [2, 2, 3, 4], grad: false }, { name: 'pv', dims: [2, 2, 2, 4], altDims: [2, 2, 3, 4], grad: false }] }],
  ['com.microsoft MultiHeadAttention qk output weighted (pre-softmax scores with attention_bias), past', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    outputs: 4, typedOutputs: true,
    inputs: [...qkv([2, 3, 8], [2, 3, 8]), { name: '', dims: [] }, { name: '', dims: [] }, { name: 'ab', dims: [1, 2, 3, 5] },
      { name: 'pk', dims: [2, 2, 2, 4], grad: false }, { name: 'pv', dims: [2, 2, 2, 4], grad: false }] }],
  ['com.microsoft MultiHeadAttention qk output weighted with masks (hidden entries hold a constant)', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1 },
    outputs: 4, typedOutputs: true, weightScale: (k, d) => (k === 3 ? causalVisible(d, [1, 1, 1, 0, 1, 1, 0, 1, 1, 1], 2) : new Array<number>(numel(d)).fill(1)),
    inputs: [...qkv([2, 3, 8], [2, 3, 8]), { name: '', dims: [] }, { name: 'kpm', type: 'int32', dims: [2, 5], values: [1, 1, 1, 0, 1, 1, 0, 1, 1, 1] }, { name: '', dims: [] },
      { name: 'pk', dims: [2, 2, 2, 4], grad: false }, { name: 'pv', dims: [2, 2, 2, 4], grad: false }] }],
  ['com.microsoft MultiHeadAttention attention_bias [B, 1, S, T], unidirectional cross with a run-time single query', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1, scale: float(0.5) },
    inputs: [...qkv([2, 3, 8], [2, 4, 8], [2, 1, 8], [2, 4, 8]), { name: '', dims: [] }, { name: '', dims: [] }, { name: 'ab', dims: [2, 1, 3, 4], altDims: [2, 1, 1, 4] }] }],
];

/** GroupQueryAttention query/key/value [B, S, ·] for N query and Nk kv heads of size H (alt: [B', S']). */
const gqaInputs = (BS: [number, number], N: number, Nk: number, H: number, alt?: [number, number]) =>
  ([['q', N], ['k', Nk], ['v', Nk]] as const).map(([name, heads]) => ({ name, dims: [...BS, heads * H], ...(alt ? { altDims: [...alt, heads * H] } : {}) }));
const none = { name: '', dims: [] };
/** seqlens_k [B] and total_sequence_length of a batch whose rows hold `totals` tokens (alt: altTotals). */
const lengths = (totals: number[], altTotals?: number[]) => [
  { name: 'seqlens', type: 'int32' as const, dims: [totals.length], ...(altTotals ? { altDims: [altTotals.length] } : {}), values: (_d: readonly number[], alt: boolean) => (alt ? altTotals! : totals).map((t) => t - 1) },
  { name: 'total', type: 'int32' as const, dims: [], values: (_d: readonly number[], alt: boolean) => [Math.max(...(alt ? altTotals! : totals))] },
];
const cache = (dims: number[], altDims?: number[]) => [{ name: 'pk', dims, ...(altDims ? { altDims } : {}), grad: false }, { name: 'pv', dims, ...(altDims ? { altDims } : {}), grad: false }];
const rope = (maxSeq: number, half: number) => [{ name: 'cos', dims: [maxSeq, half], values: cosT, grad: false }, { name: 'sin', dims: [maxSeq, half], values: sinT, grad: false }];
export const GQA: Array<[string, GradCheckCase]> = [
  ['com.microsoft GroupQueryAttention prompt (4 query / 2 kv heads), present weighted, dynamic batch and sequence', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2 }, outputs: 3,
    inputs: [...gqaInputs([2, 3], 4, 2, 8, [3, 4]), none, none, ...lengths([3, 3], [4, 4, 4])] }],
  ['com.microsoft GroupQueryAttention token generation with a past of different lengths per row', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2 }, outputs: 3,
    inputs: [...gqaInputs([2, 1], 4, 2, 8, [3, 1]), ...cache([2, 2, 4, 8], [3, 2, 3, 8]), ...lengths([5, 3], [4, 2, 3])] }],
  ['com.microsoft GroupQueryAttention shared KV buffer (past as long as the cache)', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 1 }, outputs: 3,
    inputs: [...gqaInputs([2, 1], 4, 1, 8), ...cache([2, 1, 6, 8]), ...lengths([5, 2])] }],
  ['com.microsoft GroupQueryAttention subsequent prompt (batch 1, two new tokens after three)', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 1 }, outputs: 3,
    inputs: [...gqaInputs([1, 2], 2, 1, 8, [1, 3]), ...cache([1, 1, 3, 8], [1, 1, 2, 8]), ...lengths([5], [5])] }],
  ['com.microsoft GroupQueryAttention packed QKV', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2 }, outputs: 3,
    inputs: [{ name: 'qkv', dims: [2, 3, 64], altDims: [1, 2, 64] }, none, none, none, none, ...lengths([3, 3], [2])] }],
  ['com.microsoft GroupQueryAttention do_rotary (head size 16), dynamic batch and sequence', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 1, do_rotary: 1 },
    inputs: [...gqaInputs([2, 3], 2, 1, 16, [1, 4]), none, none, ...lengths([3, 3], [4]), ...rope(8, 8)] }],
  ['com.microsoft GroupQueryAttention do_rotary interleaved, token generation with past', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 1, do_rotary: 1, rotary_interleaved: 1 }, outputs: 3,
    inputs: [...gqaInputs([2, 1], 2, 1, 16, [1, 1]), ...cache([2, 1, 3, 16], [1, 1, 5, 16]), ...lengths([4, 2], [6]), ...rope(8, 8)] }],
  ['com.microsoft GroupQueryAttention packed QKV with do_rotary', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 1, do_rotary: 1 },
    inputs: [{ name: 'qkv', dims: [2, 3, 64] }, none, none, none, none, ...lengths([3, 3]), ...rope(8, 8)] }],
  ['com.microsoft GroupQueryAttention do_rotary with position_ids', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 1, do_rotary: 1 },
    inputs: [...gqaInputs([2, 3], 2, 1, 16), none, none, ...lengths([3, 3]), ...rope(8, 8), { name: 'pos', type: 'int64', dims: [2, 3], values: positions }] }],
  ['com.microsoft GroupQueryAttention local_window_size 2', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2, local_window_size: 2 },
    inputs: [...gqaInputs([2, 4], 4, 2, 8), none, none, ...lengths([4, 4])] }],
  ['com.microsoft GroupQueryAttention local_window_size 3 with past', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 1, local_window_size: 3 }, outputs: 3,
    inputs: [...gqaInputs([2, 1], 2, 1, 8, [1, 1]), ...cache([2, 1, 5, 8], [1, 1, 4, 8]), ...lengths([6, 4], [5])] }],
  ['com.microsoft GroupQueryAttention softcap, scale', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2, softcap: float(1.5), scale: float(0.3) },
    inputs: [...gqaInputs([2, 4], 4, 2, 8), none, none, ...lengths([4, 4])] }],
  ['com.microsoft GroupQueryAttention smooth_softmax', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2, smooth_softmax: 1 },
    inputs: [...gqaInputs([2, 4], 4, 2, 8), none, none, ...lengths([4, 4])] }],
  ['com.microsoft GroupQueryAttention attention_bias and head_sink (both trainable)', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2 },
    inputs: [...gqaInputs([2, 3], 4, 2, 8), none, none, ...lengths([3, 3]), none, none, none, { name: 'ab', dims: [2, 4, 3, 3] }, { name: 'sink', dims: [4] }] }],
  ['com.microsoft GroupQueryAttention causal=0 with attention_bias [1, 1, S, T]', { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, kv_num_heads: 2, causal: 0 },
    inputs: [...gqaInputs([2, 3], 2, 2, 8), none, none, ...lengths([3, 3]), none, none, none, { name: 'ab', dims: [1, 1, 3, 3] }] }],
  ...[1, 2].map((mode): [string, GradCheckCase] => [`com.microsoft GroupQueryAttention output_qk (qk_output ${mode}) weighted`, { op: 'GroupQueryAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 4, kv_num_heads: 2, qk_output: mode, softcap: float(2) },
    outputs: 4, skipOutputs: [1, 2], weightScale: (k, d) => (k === 3 ? causalVisible(d, new Array<number>(2 * d[3]!).fill(1), 0) : new Array<number>(numel(d)).fill(1)),
    inputs: [...gqaInputs([2, 3], 4, 2, 8), none, none, ...lengths([3, 3]), none, none, none, { name: 'ab', dims: [2, 4, 3, 3] }] }]),
];

/**
 * Node configurations as real exports carry them: GPT-2 through ONNX Runtime's transformer
 * optimizer (Attention with mask_filter_value = the lowest float, a [B, total] mask, past,
 * unidirectional; hidden 32, 4 heads) and a Whisper decoder layer (MultiHeadAttention self
 * attention with past and cross attention on cached [B, N, L, H] keys, both with a qkv bias).
 */
export const REAL_EXPORT_FORMS: Array<[string, GradCheckCase]> = [
  ['GPT-2 optimizer export: com.microsoft Attention with past, [B, total] mask, lowest-float mask_filter_value', { op: 'Attention', domain: MS, dtype: 'float32',
    attrs: { num_heads: 4, unidirectional: 1, mask_filter_value: float(-3.4028234663852886e38) }, outputs: 2,
    inputs: [x([2, 2, 32], [1, 3, 32]), ...weights(32, 96), { name: 'attention_mask', type: 'int32', dims: [2, 5], altDims: [1, 5], values: (d) => [1, 1, 1, 1, 1, 0, 1, 1, 1, 1].slice(0, numel(d)) },
      { name: 'past', dims: [2, 2, 4, 3, 8], altDims: [2, 1, 4, 2, 8], grad: false }], maxElements: 24 }],
  ['Whisper decoder export: com.microsoft MultiHeadAttention self attention with past and qkv bias', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2, unidirectional: 1 }, outputs: 3,
    inputs: [...qkv([2, 1, 10], [2, 1, 10]), { name: 'bias', dims: [30] }, { name: '', dims: [] }, { name: '', dims: [] }, { name: 'pk', dims: [2, 2, 4, 5], grad: false }, { name: 'pv', dims: [2, 2, 4, 5], grad: false }] }],
  ['Whisper decoder export: com.microsoft MultiHeadAttention cross attention on cached keys, qkv bias', { op: 'MultiHeadAttention', domain: MS, dtype: 'float32', attrs: { num_heads: 2 },
    inputs: [{ name: 'q', dims: [2, 1, 10] }, { name: 'k', dims: [2, 2, 6, 5] }, { name: 'v', dims: [2, 2, 6, 5] }, { name: 'bias', dims: [30] }] }],
];

/** Every attention case. */
export const ATTENTION_CASES: Array<[string, GradCheckCase]> = [...ROTARY, ...SCATTER, ...ONNX_ATTENTION, ...MS_ATTENTION, ...MHA, ...GQA, ...REAL_EXPORT_FORMS];
