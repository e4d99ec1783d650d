/**
 * The fused attention ops' gradients against the gradients of the same computation written in
 * standard ops (MatMul, Softmax, Reshape, … — differentiated by their own rules): identical
 * inputs and output weights, float32 on ONNX Runtime's CPU EP, compared elementwise within
 * 2e-5 + 2e-4·|g| (float32 round-off of two different summation orders).
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { describe, expect, it } from 'vitest';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { float, type AttrValue } from '../../src/onnx/attributes.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { type Feeds } from '../../src/runtime/tensors.ts';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { randomValues } from '../helpers/gradcheck.ts';

interface Input {
  name: string;
  dims: number[];
  type?: 'float32' | 'int32' | 'int64';
  values?: number[];
  /** Differentiate with respect to it (default: float inputs). */
  param?: boolean;
}

const numel = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);
const ELEM = { float32: DT.FLOAT, int32: DT.INT32, int64: DT.INT64 } as const;

function tensorOf(i: Input, seed: number): ort.Tensor {
  const type = i.type ?? 'float32';
  const v = i.values ?? randomValues(numel(i.dims), seed);
  if (type === 'float32') return new ort.Tensor('float32', Float32Array.from(v), i.dims);
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(v), i.dims);
  return new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), i.dims);
}

/**
 * Gradients (as arrays) of Σ Y·R with respect to the float inputs marked as params, for a graph
 * that `build` writes with a builder; R seeded identically for every graph of the same Y shape.
 */
async function gradients(inputs: Input[], opset: number, build: (b: GraphBuilder) => string, yDims: number[]): Promise<Record<string, Float32Array>> {
  const g = create(GraphProtoSchema, { name: 'eq' });
  for (const i of inputs) g.input.push(makeValueInfo(i.name, ELEM[i.type ?? 'float32'], i.dims));
  g.input.push(makeValueInfo('R', DT.FLOAT, yDims));
  const graph = new Graph(g);
  const y = build(new GraphBuilder(graph, '/fwd'));
  g.output.push(makeValueInfo(y));
  const proto = create(ModelProtoSchema, { irVersion: opset >= 23 ? 11n : 10n, graph: g, opsetImport: [{ domain: '', version: BigInt(opset) }, { domain: 'com.microsoft', version: 1n }] });
  const feeds: Feeds = {};
  inputs.forEach((i, k) => (feeds[i.name] = tensorOf(i, 11 + k)));
  feeds.R = new ort.Tensor('float32', Float32Array.from(randomValues(numel(yDims), 99)), yDims);
  const model = { proto, baseDir: '.' };
  const shapes = await probeShapes(nodeRuntime, model, { batches: [feeds, feeds] });
  const params = inputs.filter((i) => (i.param ?? (i.type ?? 'float32') === 'float32')).map((i) => i.name);
  const { grads } = buildGradients({ graph: new Graph(g), opset, seeds: new Map([[y, 'R']]), params, shapes });
  g.output.length = 0;
  for (const p of params) g.output.push(makeValueInfo(grads.get(p)!));
  const { session } = await createSession(encodeModel(proto), { graphOptimizationLevel: 'disabled' });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(params.map((p) => [p, out[grads.get(p)!]!.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function expectClose(fused: Record<string, Float32Array>, unfused: Record<string, Float32Array>): number {
  let worst = 0;
  for (const [name, a] of Object.entries(fused)) {
    const b = unfused[name]!;
    expect(a.length, name).toBe(b.length);
    for (let i = 0; i < a.length; i++) {
      const err = Math.abs(a[i]! - b[i]!);
      worst = Math.max(worst, err);
      expect(err, `${name}[${i}]: fused ${a[i]} vs unfused ${b[i]}`).toBeLessThanOrEqual(2e-5 + 2e-4 * Math.abs(b[i]!));
    }
  }
  return worst;
}

/** [B, S, N·H] → [B, N, S, H] in standard ops. */
const heads = (b: GraphBuilder, x: string, n: number, h: number) => b.op('Transpose', [b.op('Reshape', [x, b.constInt64([0, 0, n, h])])], { perm: [0, 2, 1, 3] });
const unheads = (b: GraphBuilder, x: string) => b.op('Reshape', [b.op('Transpose', [x], { perm: [0, 2, 1, 3] }), b.constInt64([0, 0, -1])]);
/** softmax(scale · q kᵀ + bias) v, 4-D, in standard ops. */
function sdpa(b: GraphBuilder, q: string, k: string, v: string, scale: number, bias?: string, softcap?: number): string {
  let s = b.op('Mul', [b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), b.scalar(scale)]);
  if (softcap) s = b.op('Mul', [b.op('Tanh', [b.op('Mul', [s, b.scalar(1 / softcap)])]), b.scalar(softcap)]);
  if (bias) s = b.op('Add', [s, bias]);
  return b.op('MatMul', [b.op('Softmax', [s], { axis: -1 }), v]);
}
/** Additive causal bias [S, T] (key j > past + i → value) as a constant. */
const causalBias = (b: GraphBuilder, S: number, T: number, past: number, value: number) =>
  b.constFloat(Array.from({ length: S * T }, (_, e) => (e % T > past + Math.floor(e / T) ? value : 0)), [1, 1, S, T]);

describe('fused attention gradients equal those of the unfused computation', () => {
  it('com.microsoft Attention: raw mask, unidirectional, attention_bias', async () => {
    const [B, S, D, N] = [2, 4, 8, 2];
    const H = D / N;
    const mask = [1, 1, 0, 1, 1, 0, 1, 1];
    const inputs: Input[] = [{ name: 'x', dims: [B, S, D] }, { name: 'w', dims: [D, 3 * D] }, { name: 'bias', dims: [3 * D] }, { name: 'mask', dims: [B, S], type: 'int32', values: mask }, { name: 'ab', dims: [1, N, S, S] }];
    const fused = await gradients(inputs, 17, (b) => b.op('Attention', ['x', 'w', 'bias', 'mask', '', 'ab'], { num_heads: N, unidirectional: 1 }, { domain: 'com.microsoft' }), [B, S, D]);
    const unfused = await gradients(inputs, 17, (b) => {
      const [q, k, v] = b.opN('Split', [b.op('Add', [b.op('MatMul', ['x', 'w']), 'bias']), b.constInt64([D, D, D])], { axis: 2 }, { outputs: 3 }).map((t) => heads(b, t, N, H));
      const keyBias = b.constFloat(mask.map((m) => (m ? 0 : -10000)), [B, 1, 1, S]);
      const all = b.op('Add', [b.op('Add', [keyBias, causalBias(b, S, S, 0, -10000)]), 'ab']);
      return unheads(b, sdpa(b, q!, k!, v!, 1 / Math.sqrt(H), all));
    }, [B, S, D]);
    expectClose(fused, unfused);
  });

  it('com.microsoft GroupQueryAttention: 4 query heads on 2 kv heads, causal prompt, softcap', async () => {
    const [B, S, N, Nk, H] = [2, 3, 4, 2, 8];
    const inputs: Input[] = [{ name: 'q', dims: [B, S, N * H] }, { name: 'k', dims: [B, S, Nk * H] }, { name: 'v', dims: [B, S, Nk * H] },
      { name: 'seqlens', dims: [B], type: 'int32', values: [S - 1, S - 1] }, { name: 'total', dims: [], type: 'int32', values: [S] }];
    const fused = await gradients(inputs, 17, (b) => b.opN('GroupQueryAttention', ['q', 'k', 'v', '', '', 'seqlens', 'total'], { num_heads: N, kv_num_heads: Nk, softcap: float(2) }, { domain: 'com.microsoft', outputs: 3 })[0]!, [B, S, N * H]);
    const unfused = await gradients(inputs, 17, (b) => {
      // kv head k serves query heads 2k and 2k + 1: repeat each kv head twice.
      const repeat = (t: string) => b.op('Reshape', [b.op('Expand', [b.op('Unsqueeze', [heads(b, t, Nk, H), b.constInt64([2])]), b.constInt64([B, Nk, N / Nk, S, H])]), b.constInt64([B, N, S, H])]);
      return unheads(b, sdpa(b, heads(b, 'q', N, H), repeat('k'), repeat('v'), 1 / Math.sqrt(H), causalBias(b, S, S, 0, -Infinity), 2));
    }, [B, S, N * H]);
    expectClose(fused, unfused);
  });

  it('ONNX Attention (opset 23): 3-D GQA, float mask (trainable), scale', async () => {
    const [B, S, L, N, Nk, H] = [2, 3, 5, 4, 2, 4];
    const inputs: Input[] = [{ name: 'q', dims: [B, S, N * H] }, { name: 'k', dims: [B, L, Nk * H] }, { name: 'v', dims: [B, L, Nk * H] }, { name: 'mask', dims: [S, L] }];
    const attrs: Record<string, AttrValue> = { q_num_heads: N, kv_num_heads: Nk, scale: float(0.4) };
    const fused = await gradients(inputs, 23, (b) => b.op('Attention', ['q', 'k', 'v', 'mask'], attrs), [B, S, N * H]);
    const unfused = await gradients(inputs, 23, (b) => {
      const repeat = (t: string) => b.op('Reshape', [b.op('Expand', [b.op('Unsqueeze', [heads(b, t, Nk, H), b.constInt64([2])]), b.constInt64([B, Nk, N / Nk, L, H])]), b.constInt64([B, N, L, H])]);
      return unheads(b, sdpa(b, heads(b, 'q', N, H), repeat('k'), repeat('v'), 0.4, 'mask'));
    }, [B, S, N * H]);
    expectClose(fused, unfused);
  });

  it('com.microsoft RotaryEmbedding against the rotation in standard ops', async () => {
    const [B, S, N, H, M] = [2, 3, 2, 8, 6];
    const angles = (f: (x: number) => number) => Array.from({ length: M * (H / 2) }, (_, e) => f((Math.floor(e / (H / 2)) + 1) * 0.2 * (1 + (e % (H / 2)))));
    const pos = [0, 1, 2, 2, 3, 4];
    const inputs: Input[] = [{ name: 'x', dims: [B, S, N * H] }, { name: 'pos', dims: [B, S], type: 'int64', values: pos },
      { name: 'cos', dims: [M, H / 2], values: angles(Math.cos), param: false }, { name: 'sin', dims: [M, H / 2], values: angles(Math.sin), param: false }];
    const fused = await gradients(inputs, 17, (b) => b.op('RotaryEmbedding', ['x', 'pos', 'cos', 'sin'], { num_heads: N }, { domain: 'com.microsoft' }), [B, S, N * H]);
    const unfused = await gradients(inputs, 17, (b) => {
      const x4 = b.op('Reshape', ['x', b.constInt64([0, 0, N, H])]);
      const [x1, x2] = b.opN('Split', [x4, b.constInt64([H / 2, H / 2])], { axis: 3 }, { outputs: 2 });
      const c = b.op('Unsqueeze', [b.op('Gather', ['cos', 'pos'], { axis: 0 }), b.constInt64([2])]);
      const s = b.op('Unsqueeze', [b.op('Gather', ['sin', 'pos'], { axis: 0 }), b.constInt64([2])]);
      const real = b.op('Sub', [b.op('Mul', [c, x1!]), b.op('Mul', [s, x2!])]);
      const imag = b.op('Add', [b.op('Mul', [s, x1!]), b.op('Mul', [c, x2!])]);
      return b.op('Reshape', [b.op('Concat', [real, imag], { axis: 3 }), b.constInt64([0, 0, -1])]);
    }, [B, S, N * H]);
    expectClose(fused, unfused);
  });
});

/** A one-node graph with hand-made shapes, differentiated with respect to `param`. */
function differentiate(op: string, domain: string | undefined, opset: number, inputs: Array<[string, number[], number?]>, outputs: Array<[string, number[]]>, attrs: Record<string, AttrValue>, param: string): void {
  const g = create(GraphProtoSchema, { name: 'refuse' });
  const shapes = new Map<string, { dtype: number; shape: number[] }>();
  for (const [name, dims, dt] of inputs) {
    if (!name) continue;
    g.input.push(makeValueInfo(name, dt ?? DT.FLOAT, dims));
    shapes.set(name, { dtype: dt ?? DT.FLOAT, shape: dims });
  }
  for (const [name, dims] of outputs) if (name) shapes.set(name, { dtype: DT.FLOAT, shape: dims }), shapes.set(`R_${name}`, { dtype: DT.FLOAT, shape: dims });
  const graph = new Graph(g);
  graph.addNode({ opType: op, domain, inputs: inputs.map(([n]) => n), outputs: outputs.map(([n]) => n), attrs, name: 'n' });
  buildGradients({ graph, opset, seeds: new Map([[outputs[0]![0], `R_${outputs[0]![0]}`]]), params: [param], shapes });
}

describe('refused attribute values and inputs fail with E_UNSUPPORTED_OP naming the reason', () => {
  const MS = 'com.microsoft';
  const x: [string, number[]] = ['x', [2, 3, 8]];
  const w: [string, number[]] = ['w', [8, 24]];
  const y: Array<[string, number[]]> = [['y', [2, 3, 8]]];
  const I32 = DT.INT32;
  const cases: Array<[string, () => void, RegExp]> = [
    ['Attention do_rotary', () => differentiate('Attention', MS, 17, [x, w], y, { num_heads: 2, do_rotary: 1 }, 'x'), /do_rotary=1/],
    ['Attention past_present_share_buffer', () => differentiate('Attention', MS, 17, [x, w], y, { num_heads: 2, past_present_share_buffer: 1 }, 'x'), /past_present_share_buffer=1/],
    ['Attention 4-D mask', () => differentiate('Attention', MS, 17, [x, w, ['b', [24]], ['m', [2, 1, 4, 4], I32]], y, { num_heads: 2 }, 'x'), /4-D attention mask/],
    ['Attention [3B + 2] mask', () => differentiate('Attention', MS, 17, [x, w, ['b', [24]], ['m', [8], I32]], y, { num_heads: 2 }, 'x'), /\[3B \+ 2\]/],
    ['MultiHeadAttention packed QKV', () => differentiate('MultiHeadAttention', MS, 17, [['q', [2, 3, 2, 3, 4]]], y, { num_heads: 2 }, 'q'), /packed QKV/],
    ['MultiHeadAttention packed KV', () => differentiate('MultiHeadAttention', MS, 17, [['q', [2, 3, 8]], ['k', [2, 3, 2, 2, 4]], ['', []]], y, { num_heads: 2 }, 'q'), /packed KV/],
    ['MultiHeadAttention cache_indirection', () => differentiate('MultiHeadAttention', MS, 17, [['q', [2, 3, 8]], ['k', [2, 3, 8]], ['v', [2, 3, 8]], ['', []], ['', []], ['', []], ['', []], ['', []], ['', []], ['ci', [2, 1, 3], I32]], y, { num_heads: 2 }, 'q'), /cache_indirection/],
    ['GroupQueryAttention quantized cache', () => differentiate('GroupQueryAttention', MS, 17, [['q', [2, 1, 32]], ['k', [2, 1, 16]], ['v', [2, 1, 16]], ['', []], ['', []], ['sl', [2], I32], ['t', [], I32]], [['o', [2, 1, 32]]], { num_heads: 4, kv_num_heads: 2, k_quant_type: 'PER_TENSOR' }, 'q'), /quantized KV cache/],
    ['GroupQueryAttention q_norm_weight', () => differentiate('GroupQueryAttention', MS, 17, [['q', [2, 1, 32]], ['k', [2, 1, 16]], ['v', [2, 1, 16]], ['', []], ['', []], ['sl', [2], I32], ['t', [], I32], ['', []], ['', []], ['', []], ['', []], ['', []], ['', []], ['', []], ['qn', [8]], ['kn', [8]]], [['o', [2, 1, 32]]], { num_heads: 4, kv_num_heads: 2 }, 'q'), /q_norm_weight/],
    ['GroupQueryAttention sliding_window_cache', () => differentiate('GroupQueryAttention', MS, 17, [['q', [2, 1, 32]], ['k', [2, 1, 16]], ['v', [2, 1, 16]], ['', []], ['', []], ['sl', [2], I32], ['t', [], I32]], [['o', [2, 1, 32]]], { num_heads: 4, kv_num_heads: 2, sliding_window_cache: 1, local_window_size: 2 }, 'q'), /sliding_window_cache=1/],
    ['GroupQueryAttention past without present outputs', () => differentiate('GroupQueryAttention', MS, 17, [['q', [2, 1, 32]], ['k', [2, 1, 16]], ['v', [2, 1, 16]], ['pk', [2, 2, 4, 8]], ['pv', [2, 2, 4, 8]], ['sl', [2], I32], ['t', [], I32]], [['o', [2, 1, 32]]], { num_heads: 4, kv_num_heads: 2 }, 'q'), /present_key\/present_value outputs/],
    ['RotaryEmbedding is_packed_batching', () => differentiate('RotaryEmbedding', MS, 17, [x, ['p', [2, 3], DT.INT64], ['c', [8, 2]], ['s', [8, 2]]], y, { num_heads: 2, is_packed_batching: 1 }, 'x'), /is_packed_batching=1/],
    ['ONNX Attention opset-25 window', () => differentiate('Attention', undefined, 25, [['q', [2, 2, 3, 4]], ['k', [2, 2, 3, 4]], ['v', [2, 2, 3, 4]]], [['y', [2, 2, 3, 4]]], { left_window_size: 2 }, 'q'), /left_window_size/],
    ['TensorScatter axis 0', () => differentiate('TensorScatter', undefined, 24, [['c', [4, 3]], ['u', [2, 3]]], [['y', [4, 3]]], { axis: 0 }, 'u'), /axis 0/],
  ];
  it.each(cases)('%s', (_label, run, why) => {
    expect(run).toThrow(why);
    try {
      run();
    } catch (e) {
      expect((e as { code?: string }).code).toBe('E_UNSUPPORTED_OP');
    }
  });
});
