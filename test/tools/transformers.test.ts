import type { Feeds, HostTensor, Session, TensorLike } from '../../src/runtime/session.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeModel, type OnnxModel } from '../../src/onnx/model.ts';
import { tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { valueInfoType } from '../../src/onnx/graph.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { createSession } from '../../src/node/onnxruntime.ts';
import { f32Tensor, i64Tensor } from '../../src/runtime/tensors.ts';
import { buildBert, buildGpt2, buildLlama, buildVit, irVersionFor, type BertConfig, type Gpt2Config, type LlamaConfig, type VitConfig } from '../../tools/lib/transformers.ts';
import { BERT_TINY_CONFIG } from '../../tools/lib/demo-graphs.ts';

const sessions: Session[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function run(model: OnnxModel, feeds: Feeds): Promise<HostTensor> {
  const { session } = await createSession(encodeModel(model.proto), { threads: 1 });
  sessions.push(session);
  const out = await session.run(feeds);
  return out.logits!;
}

/** Deterministic token ids, mask with `pad` trailing zeros on the last row. */
function textFeeds(batch: number, seq: number, vocab: number, opts: { tokenTypes?: boolean; pad?: number; salt?: number } = {}): Feeds {
  const n = batch * seq;
  const ids = Array.from({ length: n }, (_, i) => (i * 37 + 11 + (opts.salt ?? 0)) % vocab);
  const mask = Array.from({ length: n }, (_, i) => (Math.floor(i / seq) === batch - 1 && i % seq >= seq - (opts.pad ?? 0) ? 0 : 1));
  const feeds: Feeds = { input_ids: i64Tensor(ids, [batch, seq]), attention_mask: i64Tensor(mask, [batch, seq]) };
  if (opts.tokenTypes) feeds.token_type_ids = i64Tensor(Array.from({ length: n }, (_, i) => (i % seq >= seq / 2 ? 1 : 0)), [batch, seq]);
  return feeds;
}

function maxAbsDiff(a: TensorLike, b: TensorLike): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  expect(x.length).toBe(y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

function expectFinite(t: TensorLike, dims: number[]): void {
  expect(t.dims).toEqual(dims);
  expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
}

const bertTiny: BertConfig = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxPositions: 64, numLabels: 3, seed: 7, biasStd: 0.02 };
const llamaTiny: LlamaConfig = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 48, maxPositions: 64, seed: 7 };
const gpt2Tiny: Gpt2Config = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 64, seed: 7, biasStd: 0.02 };
const vitTiny: VitConfig = { imageSize: 16, patchSize: 4, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, numLabels: 5, seed: 7, biasStd: 0.02 };

describe('export layout', () => {
  it('BERT: optimum node names, [in, out] onnx::MatMul weights, module-named biases, symbolic dims', () => {
    const m = buildBert({ ...bertTiny, opset: 14 });
    const g = m.proto.graph!;
    expect(Number(m.proto.irVersion)).toBe(7);
    expect(m.proto.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 14]]);
    const byName = new Map(g.node.map((n) => [n.name, n]));
    const q = byName.get('/bert/encoder/layer.0/attention/self/query/MatMul')!;
    expect(q.opType).toBe('MatMul');
    expect(q.output).toEqual(['/bert/encoder/layer.0/attention/self/query/MatMul_output_0']);
    const w = g.initializer.find((t) => t.name === q.input[1])!;
    expect(w.name).toMatch(/^onnx::MatMul_\d+$/);
    expect(w.dims.map(Number)).toEqual([32, 32]);
    const add = byName.get('/bert/encoder/layer.0/attention/self/query/Add')!;
    expect(add.input).toEqual(['bert.encoder.layer.0.attention.self.query.bias', q.output[0]]);
    expect(byName.get('/bert/encoder/layer.1/intermediate/intermediate_act_fn/Erf')?.opType).toBe('Erf');
    expect(byName.get('/bert/embeddings/LayerNorm/ReduceMean')?.opType).toBe('ReduceMean');
    expect(byName.get('/bert/pooler/dense/Gemm')?.opType).toBe('Gemm');
    expect(g.node.some((n) => n.opType === 'Constant')).toBe(true);
    expect(g.input.map((v) => [v.name, valueInfoType(v)])).toEqual(
      ['input_ids', 'attention_mask', 'token_type_ids'].map((n) => [n, { elemType: DT.INT64, dims: ['batch_size', 'sequence_length'] }]),
    );
    expect(g.output.map((v) => [v.name, valueInfoType(v)])).toEqual([['logits', { elemType: DT.FLOAT, dims: ['batch_size', 3] }]]);
    // 6 linear MatMuls per layer, all with distinct anonymous weights.
    const linears = g.node.filter((n) => n.opType === 'MatMul' && n.input[1]!.startsWith('onnx::MatMul_'));
    expect(linears.length).toBe(12);
    expect(new Set(linears.map((n) => n.input[1])).size).toBe(12);
  });

  it('BERT at opset 17 / 20 uses LayerNormalization and the Gelu op; module weight names on request', () => {
    const m17 = buildBert({ ...bertTiny, opset: 17 });
    expect(Number(m17.proto.irVersion)).toBe(irVersionFor(17));
    expect(m17.proto.graph!.node.find((n) => n.name === '/bert/embeddings/LayerNorm/LayerNormalization')).toBeDefined();
    const m20 = buildBert({ ...bertTiny, opset: 20, weightNames: 'module' });
    expect(Number(m20.proto.irVersion)).toBe(9);
    expect(m20.proto.graph!.node.find((n) => n.name === '/bert/encoder/layer.0/intermediate/intermediate_act_fn/Gelu')).toBeDefined();
    const q = m20.proto.graph!.node.find((n) => n.name === '/bert/encoder/layer.0/attention/self/query/MatMul')!;
    expect(q.input[1]).toBe('bert.encoder.layer.0.attention.self.query.weight');
    expect(() => buildBert({ ...bertTiny, opset: 14, layerNorm: 'fused' })).toThrow(/opset/);
    expect(() => buildBert({ ...bertTiny, opset: 17, gelu: 'op' })).toThrow(/opset/);
  });

  it('LLaMA, GPT-2 and ViT carry their architecture names and ops', () => {
    const names = (m: OnnxModel) => new Map(m.proto.graph!.node.map((n) => [n.name, n.opType]));
    const llama = names(buildLlama(llamaTiny));
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) expect(llama.get(`/model/layers.1/self_attn/${p}/MatMul`)).toBe('MatMul');
    for (const p of ['gate_proj', 'up_proj', 'down_proj']) expect(llama.get(`/model/layers.0/mlp/${p}/MatMul`)).toBe('MatMul');
    expect(llama.get('/model/layers.0/mlp/act_fn/Sigmoid')).toBe('Sigmoid');
    expect(llama.get('/model/layers.0/input_layernorm/Reciprocal')).toBe('Reciprocal');
    expect(llama.get('/model/Trilu')).toBe('Trilu');
    expect(llama.get('/model/layers.0/self_attn/Neg')).toBe('Neg');
    expect(llama.get('/lm_head/MatMul')).toBe('MatMul');

    const gpt2 = buildGpt2(gpt2Tiny);
    const g2 = names(gpt2);
    expect(g2.get('/transformer/h.0/attn/c_attn/Gemm')).toBe('Gemm');
    expect(g2.get('/transformer/h.1/mlp/c_proj/Gemm')).toBe('Gemm');
    expect(g2.get('/transformer/h.0/attn/Split')).toBe('Split');
    expect(g2.get('/transformer/h.0/attn/Where')).toBe('Where');
    expect(g2.get('/transformer/h.0/mlp/act/Tanh')).toBe('Tanh');
    const cAttn = gpt2.proto.graph!.node.find((n) => n.name === '/transformer/h.0/attn/c_attn/Gemm')!;
    expect(cAttn.input.slice(1)).toEqual(['transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.bias']);
    expect(gpt2.proto.graph!.initializer.find((t) => t.name === cAttn.input[1])!.dims.map(Number)).toEqual([32, 96]);
    expect(names(buildGpt2({ ...gpt2Tiny, conv1d: 'matmul' })).get('/transformer/h.0/attn/c_attn/MatMul')).toBe('MatMul');

    const vit = buildVit(vitTiny);
    const v = names(vit);
    expect(v.get('/vit/embeddings/patch_embeddings/projection/Conv')).toBe('Conv');
    expect(v.get('/vit/encoder/layer.0/attention/attention/query/MatMul')).toBe('MatMul');
    expect(v.get('/vit/encoder/layer.1/intermediate/intermediate_act_fn/Gelu')).toBe('Gelu');
    expect(v.get('/vit/encoder/layer.0/layernorm_before/LayerNormalization')).toBe('LayerNormalization');
    expect(v.get('/classifier/Gemm')).toBe('Gemm');
    expect(valueInfoType(vit.proto.graph!.input[0]!)).toEqual({ elemType: DT.FLOAT, dims: ['batch_size', 3, 16, 16] });
  });

  it('is deterministic: same seed → identical bytes, other seed → other weights', () => {
    const a = encodeModel(buildBert(bertTiny).proto);
    const b = encodeModel(buildBert(bertTiny).proto);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    const c = encodeModel(buildBert({ ...bertTiny, seed: 8 }).proto);
    expect(c.byteLength).toBe(a.byteLength);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(c))).not.toBe(0);
    for (const build of [() => buildLlama(llamaTiny), () => buildGpt2(gpt2Tiny), () => buildVit(vitTiny)]) {
      expect(Buffer.compare(Buffer.from(encodeModel(build().proto)), Buffer.from(encodeModel(build().proto)))).toBe(0);
    }
  });

  it('random init has the requested scale; LayerNorm weight 1, bias 0', () => {
    const m = buildBert({ ...bertTiny, biasStd: 0 });
    const g = m.proto.graph!;
    const word = tensorToFloat32(g.initializer.find((t) => t.name === 'bert.embeddings.word_embeddings.weight')!, '.');
    const std = Math.sqrt(word.reduce((s, x) => s + x * x, 0) / word.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    expect(tensorToFloat32(g.initializer.find((t) => t.name === 'bert.embeddings.LayerNorm.weight')!, '.').every((x) => x === 1)).toBe(true);
    expect(tensorToFloat32(g.initializer.find((t) => t.name === 'bert.encoder.layer.0.output.LayerNorm.bias')!, '.').every((x) => x === 0)).toBe(true);
  });
});

describe('runs in onnxruntime-node at two shapes', () => {
  const cases: Array<[string, () => OnnxModel, (b: number, s: number) => Feeds, (b: number, s: number) => number[]]> = [
    ['BERT opset 14', () => buildBert({ ...bertTiny, opset: 14 }), (b, s) => textFeeds(b, s, 64, { tokenTypes: true, pad: 2 }), (b) => [b, 3]],
    ['BERT opset 20', () => buildBert({ ...bertTiny, opset: 20 }), (b, s) => textFeeds(b, s, 64, { tokenTypes: true, pad: 2 }), (b) => [b, 3]],
    ['LLaMA', () => buildLlama(llamaTiny), (b, s) => textFeeds(b, s, 64, { pad: 2 }), (b, s) => [b, s, 64]],
    ['LLaMA GQA, tied, opset 18', () => buildLlama({ ...llamaTiny, numKeyValueHeads: 2, tieWordEmbeddings: true, opset: 18 }), (b, s) => textFeeds(b, s, 64, { pad: 2 }), (b, s) => [b, s, 64]],
    ['GPT-2', () => buildGpt2(gpt2Tiny), (b, s) => textFeeds(b, s, 64, { pad: 2 }), (b, s) => [b, s, 64]],
    ['GPT-2 opset 17 MatMul', () => buildGpt2({ ...gpt2Tiny, opset: 17, conv1d: 'matmul' }), (b, s) => textFeeds(b, s, 64, { pad: 2 }), (b, s) => [b, s, 64]],
    [
      'ViT',
      () => buildVit(vitTiny),
      (b) => ({ pixel_values: f32Tensor(Float32Array.from({ length: b * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37)), [b, 3, 16, 16]) }),
      (b) => [b, 5],
    ],
  ];
  for (const [name, build, feeds, dims] of cases) {
    it(name, async () => {
      const model = build();
      const { session } = await createSession(encodeModel(model.proto), { threads: 1, memPattern: false });
      sessions.push(session);
      for (const [b, s] of [
        [1, 5],
        [3, 11],
      ] as const) {
        const out = (await session.run(feeds(b, s))).logits!;
        expectFinite(out, dims(b, s));
      }
    });
  }
});

describe('export variants of one seed compute the same function', () => {
  const feeds = textFeeds(2, 9, 64, { tokenTypes: true, pad: 3 });
  const lmFeeds = textFeeds(2, 9, 64, { pad: 3 });

  it('BERT: decomposed LayerNorm = LayerNormalization, erf GELU = Gelu op, Gemm = MatMul heads, Slice = Range positions', async () => {
    const ref = await run(buildBert({ ...bertTiny, opset: 14 }), feeds);
    expect(Math.max(...(ref.data as Float32Array)) - Math.min(...(ref.data as Float32Array))).toBeGreaterThan(1e-3);
    const variants: BertConfig[] = [
      { ...bertTiny, opset: 17 },
      { ...bertTiny, opset: 17, layerNorm: 'decomposed' },
      { ...bertTiny, opset: 20 },
      { ...bertTiny, opset: 20, gelu: 'erf', layerNorm: 'decomposed' },
      { ...bertTiny, opset: 18, head: 'matmul', positionIds: 'range', firstToken: 'slice', weightNames: 'module' },
    ];
    for (const v of variants) expect(maxAbsDiff(await run(buildBert(v), feeds), ref)).toBeLessThan(1e-5);
  });

  it('LLaMA: rotary tables = computed rotary, Trilu = Range mask, Reciprocal = Div', async () => {
    const ref = await run(buildLlama(llamaTiny), lmFeeds);
    const v = await run(buildLlama({ ...llamaTiny, opset: 14, rotary: 'computed', causalMask: 'range', rmsInverse: 'div' }), lmFeeds);
    expect(maxAbsDiff(v, ref)).toBeLessThan(1e-5);
  });

  it('GPT-2: Conv1D as Gemm = Conv1D as MatMul', async () => {
    const ref = await run(buildGpt2(gpt2Tiny), lmFeeds);
    expect(maxAbsDiff(await run(buildGpt2({ ...gpt2Tiny, conv1d: 'matmul', opset: 17 }), lmFeeds), ref)).toBeLessThan(1e-5);
  });

  it('ViT: opset 14 decomposed/erf/MatMul head = opset 20 fused/Gelu/Gemm head', async () => {
    const px = { pixel_values: f32Tensor(Float32Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.cos(i * 0.11)), [2, 3, 16, 16]) };
    const ref = await run(buildVit(vitTiny), px);
    expect(maxAbsDiff(await run(buildVit({ ...vitTiny, opset: 14, head: 'matmul', firstToken: 'slice' }), px), ref)).toBeLessThan(1e-5);
  });
});

describe('masks', () => {
  it('BERT: padded tokens do not change the logits', async () => {
    const m = buildBert(bertTiny);
    const a = textFeeds(2, 8, 64, { tokenTypes: true, pad: 3 });
    const ids = Int32Array.from(a.input_ids!.data as BigInt64Array, Number);
    for (let i = 13; i < 16; i++) ids[i] = (ids[i]! + 5) % 64; // last row, padded positions
    const b = { ...a, input_ids: i64Tensor(Array.from(ids), [2, 8]) };
    expect(maxAbsDiff(await run(m, a), await run(m, b))).toBe(0);
  });

  for (const [name, build] of [
    ['LLaMA', () => buildLlama(llamaTiny)],
    ['LLaMA Range mask', () => buildLlama({ ...llamaTiny, causalMask: 'range' })],
    ['GPT-2', () => buildGpt2(gpt2Tiny)],
  ] as const) {
    it(`${name}: causal, a later token does not change earlier logits`, async () => {
      const m = build();
      const a = textFeeds(1, 6, 64);
      const ids = Array.from(a.input_ids!.data as BigInt64Array, Number);
      ids[5] = (ids[5]! + 9) % 64;
      const la = (await run(m, a)).data as Float32Array;
      const lb = (await run(m, { ...a, input_ids: i64Tensor(ids, [1, 6]) })).data as Float32Array;
      expect(Array.from(la.subarray(0, 5 * 64))).toEqual(Array.from(lb.subarray(0, 5 * 64)));
      expect(Math.max(...la.subarray(5 * 64).map((x, i) => Math.abs(x - lb[5 * 64 + i]!)))).toBeGreaterThan(1e-4);
    });
  }
});

describe('numeric check of the embedding, LayerNorm, pooler and classifier blocks', () => {
  it('a 0-layer BERT matches a plain-JS forward pass', async () => {
    const cfg: BertConfig = { ...bertTiny, numLayers: 0, opset: 14 };
    const m = buildBert(cfg);
    const init = (name: string) => tensorToFloat32(m.proto.graph!.initializer.find((t) => t.name === name)!, '.');
    const H = 32;
    const feeds = textFeeds(2, 4, 64, { tokenTypes: true });
    const ids = Array.from(feeds.input_ids!.data as BigInt64Array, Number);
    const types = Array.from(feeds.token_type_ids!.data as BigInt64Array, Number);
    const [word, pos, type] = ['word', 'position', 'token_type'].map((k) => init(`bert.embeddings.${k}_embeddings.weight`)) as [Float32Array, Float32Array, Float32Array];
    const poolW = init('bert.pooler.dense.weight'); // [out, in]
    const poolB = init('bert.pooler.dense.bias');
    const clsW = init('classifier.weight');
    const clsB = init('classifier.bias');
    const want: number[] = [];
    for (let b = 0; b < 2; b++) {
      // token 0 of row b: position 0
      const t = b * 4;
      const e = Array.from({ length: H }, (_, j) => word[ids[t]! * H + j]! + type[types[t]! * H + j]! + pos[j]!);
      const mean = e.reduce((s, x) => s + x, 0) / H;
      const variance = e.reduce((s, x) => s + (x - mean) ** 2, 0) / H;
      const ln = e.map((x) => (x - mean) / Math.sqrt(variance + 1e-12));
      const pooled = Array.from({ length: H }, (_, o) => Math.tanh(poolB[o]! + ln.reduce((s, x, i) => s + x * poolW[o * H + i]!, 0)));
      for (let c = 0; c < 3; c++) want.push(clsB[c]! + pooled.reduce((s, x, i) => s + x * clsW[c * H + i]!, 0));
    }
    const got = Array.from((await run(m, feeds)).data as Float32Array);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
  });
});

describe('shipped demo graph config', () => {
  it('bert-tiny builds, runs and stays small', async () => {
    const m = buildBert(BERT_TINY_CONFIG);
    expect(encodeModel(m.proto).byteLength).toBeLessThan(2 * 2 ** 20);
    const out = await run(m, textFeeds(2, 12, BERT_TINY_CONFIG.vocabSize, { tokenTypes: true, pad: 4 }));
    expectFinite(out, [2, 2]);
  });
});
