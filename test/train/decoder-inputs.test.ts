/**
 * Decoders train without the user feeding their cache inputs: the roles of extra inputs found
 * from the graph (src/data/model-inputs.ts) and the values collation fills them with.
 *
 *  - Roles on the real exports (ONNX Runtime's GPT-2 with `[2, B, H, P, D]` past and `mask_index`,
 *    the torch GPT-2 with past, a Whisper decoder layer, BERT exports) and on generated decoders.
 *  - Fills: empty past in the model's dtype and layout, `use_cache_branch` false, HF's position
 *    ids, GroupQueryAttention's seqlens_k / total_sequence_length, a static cache's zeros, write
 *    index and valid length.
 *  - Equivalence, the test that the fills are right: a decoder with a cache input (stacked,
 *    optimum-style with position_ids, fp16, an opset-24 static cache) gives the same loss and θ
 *    gradients as the same weights exported without one, on right-padded batches.
 *  - Real exports train end to end: gpt2_past.onnx (token-cls on its hidden state), and ONNX
 *    Runtime's fused tiny GPT-2 LM through its lm_head, whose loss equals the HF loss computed
 *    here from the original model run with hand-made feeds.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR, relError } from '../helpers/fixtures.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { inject } from '../../src/adapter/inject.ts';
import { computeGradients } from '../../src/node/gradients.ts';
import { readBatches } from '../../src/node/batches.ts';
import { probeBatch } from '../../src/train/probe-batches.ts';
import { buildGradModel } from '../../src/train/grad-model.ts';
import { runGradModel } from '../../src/train/grad-run.ts';
import { describeInputs, fillInput, modelBounds, positionIdsFromMask, type InputSpec } from '../../src/data/model-inputs.ts';
import { exampleSetFromRows } from '../../src/data/example-set.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { create, GraphProtoSchema } from '../../src/onnx/proto.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { buildGpt2, buildLlama, type Gpt2Config, type LlamaConfig } from '../../tools/lib/transformers.ts';
import { toHalfPrecision } from '../../tools/lib/half.ts';

const REAL = join(FIXTURES_DIR, 'real-exports');
const real = (name: string) => loadModel(join(REAL, name));
const roles = (model: OnnxModel) => Object.fromEntries(describeInputs(model.proto.graph!).map((i) => [i.name, [i.role, i.seqAxis, i.batchAxis]]));

/** Right-padded causal-LM examples of uneven lengths (ids < 64). */
const LM_ROWS = [[5, 9, 3, 12, 40, 2, 7], [7, 1], [11, 23, 35, 47, 59], [4, 4, 8]].map((ids) => ({ input_ids: ids }));

let dir: string;
let lmData: string;
beforeAll(() => {
  dir = tempDir('peanut-decoders-');
  lmData = join(dir, 'lm.jsonl');
  writeFileSync(lmData, LM_ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

/** Loss and gradients of `model` adapted on `targets` (fixed seed), on the LM rows. */
async function lmGradients(model: OnnxModel, targets: string) {
  const adapted = inject(model, { targets, r: 4, seed: 2 }).model;
  const r = await computeGradients(adapted, { data: lmData, task: 'causal-lm' });
  return r.tensors;
}

function expectSameGradients(a: Map<string, { data: ArrayLike<number | bigint> }>, b: Map<string, { data: ArrayLike<number | bigint> }>, tol: number): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [k, t] of a) {
    const e = relError(Array.from(t.data, Number), Array.from(b.get(k)!.data, Number));
    expect(e, k).toBeLessThanOrEqual(tol);
    worst = Math.max(worst, e);
  }
  return worst;
}

describe('roles of extra inputs, from the graph', () => {
  it('real exports: stacked and split past, mask_index, input_mask, cross-attention caches, static dims', () => {
    const g2 = roles(real('gpt2_past.onnx'));
    expect(g2.input_ids![0]).toBe('input_ids');
    for (let i = 0; i < 12; i++) expect(g2[`past_${i}`]).toEqual(['past', 3, 1]); // [2, B, H, P, D]
    expect(roles(real('tiny-random-gpt2-fp32-past.onnx'))).toEqual({
      input_ids: ['input_ids', undefined, undefined],
      position_ids: ['position_ids', undefined, undefined],
      attention_mask: ['attention_mask', undefined, undefined], // Attention's mask_index [B, total]
      past_0: ['past', 3, 1],
      past_1: ['past', 3, 1],
      past_2: ['past', 3, 1],
      past_3: ['past', 3, 1],
      past_4: ['past', 3, 1],
    });
    const w = describeInputs(real('whisper_hf_fp32_decoder_attention_with_past.onnx').proto.graph!);
    expect(Object.fromEntries(w.map((i) => [i.name, i.role]))).toEqual({ input_hidden_states: 'data', past_key_self: 'past', past_value_self: 'past', past_key_cross: 'data', past_value_cross: 'data' });
    // Its self-attention past has a fixed length (10): real values only, never an empty cache.
    expect(fillInput(w.find((i) => i.name === 'past_key_self')!, { B: 2, T: 1, lengths: [1, 1] })).toBeUndefined();
    expect(roles(real('bert_toy_optimized.onnx')).input_mask![0]).toBe('attention_mask');
  });

  it('bounds from the graph: vocabulary, positions (tables or a static sequence dim), token types', () => {
    const b = (name: string) => {
      const m = real(name);
      return modelBounds(m.proto.graph!, describeInputs(m.proto.graph!));
    };
    expect(b('TFBertForQuestionAnswering.onnx')).toEqual({ vocab: 20, positions: 7, tokenTypes: 2 });
    expect(b('bert_toy_optimized.onnx')).toEqual({ vocab: 99, positions: 512, tokenTypes: 16 });
    expect(b('tiny-random-gpt2-fp32-past.onnx')).toEqual({ vocab: 1000, positions: 512 });
    expect(b('gpt2_past.onnx')).toEqual({ vocab: 20, positions: 1 });
    expect(b('whisper_hf_fp32_decoder_attention_with_past.onnx')).toEqual({});
  });

  it('generated decoders: optimum past, a static cache written by TensorScatter, its write index and valid length', () => {
    const cfg = { vocabSize: 64, hiddenSize: 16, numLayers: 1, numHeads: 2, maxPositions: 32 };
    expect(roles(buildGpt2({ ...cfg, cache: 'split', positionIdsInput: true }))).toMatchObject({
      position_ids: ['position_ids', undefined, undefined],
      'past_key_values.0.key': ['past', 2, 0],
      'past_key_values.0.value': ['past', 2, 0],
    });
    const llama = buildLlama({ ...cfg, intermediateSize: 32, cache: 'static', cacheLength: 8 });
    expect(roles(llama)).toMatchObject({
      'past_key_values.0.key': ['static_cache', 2, 0],
      write_indices: ['cache_write_index', undefined, undefined],
      nonpad_kv_seqlen: ['written_length', undefined, undefined],
    });
    // the rotary table has 32 rows, the cache 8
    expect(modelBounds(llama.proto.graph!, describeInputs(llama.proto.graph!))).toEqual({ vocab: 64, positions: 8 });
  });

  it('an int input with a name of its own that indexes an embedding table is the token input', () => {
    const g = create(GraphProtoSchema, { name: 'keras' });
    g.input.push(makeValueInfo('input_1', DT.INT32, ['N', 5]), makeValueInfo('attention_mask_1', DT.INT32, ['N', 5]));
    const graph = new Graph(g);
    graph.addInitializer(floatTensor('emb', [30, 4], new Float32Array(120)));
    graph.addNode({ opType: 'Cast', inputs: ['input_1'], outputs: ['ids64'], attrs: { to: DT.INT64 } });
    graph.addNode({ opType: 'Gather', inputs: ['emb', 'ids64'], outputs: ['h'] });
    const inputs = describeInputs(g);
    expect(inputs.map((i) => i.role)).toEqual(['input_ids', 'attention_mask']);
    expect(modelBounds(g, inputs)).toEqual({ vocab: 30, positions: 5 });
  });
});

describe('probe batches of a model without a token input', () => {
  it('Whisper decoder layer: its fixed-length caches are synthetic (never asked of collation), the labels take their declared [2, 1]', async () => {
    const model = inject(real('whisper_hf_fp32_decoder_attention_with_past.onnx'), { r: 4, seed: 1 }).model;
    const gm = await buildGradModel(nodeRuntime, model, { task: 'token-cls', heads: ['output_hidden_states'] });
    expect(gm.params.length).toBe(6);
    const feeds = probeBatch({ inputs: gm.inputs, labels: gm.labels, task: 'token-cls' }, { B: 3, T: 5 });
    expect(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.dims]))).toEqual({
      input_hidden_states: [2, 1, 10],
      past_key_self: [2, 2, 10, 5],
      past_value_self: [2, 2, 10, 5],
      past_key_cross: [2, 2, 20, 5],
      past_value_cross: [2, 2, 20, 5],
      labels: [2, 1],
    });
  });
});

describe('values collation fills', () => {
  const batch = (inputs: InputSpec[], rows: object[]) => exampleSetFromRows(rows, 'rows').batch(rows.map((_, i) => i), { inputs, labels: [], task: 'causal-lm' });

  it('empty past in the model dtype and layout; HF position ids (cumsum(mask) − 1, padding 1)', () => {
    const model = toHalfPrecision(buildGpt2({ vocabSize: 64, hiddenSize: 16, numLayers: 1, numHeads: 2, maxPositions: 32, cache: 'stacked', positionIdsInput: true }));
    const inputs = describeInputs(model.proto.graph!);
    const b = batch(inputs, [{ input_ids: [5, 6, 7] }, { input_ids: [8] }]);
    const past = b.get('past_0')!;
    expect(past.type).toBe('float16');
    expect(past.data).toBeInstanceOf(Uint16Array);
    expect(past.dims).toEqual([2, 2, 2, 0, 8]);
    expect(Array.from(b.get('attention_mask')!.data as BigInt64Array, Number)).toEqual([1, 1, 1, 1, 0, 0]);
    expect(Array.from(b.get('position_ids')!.data as BigInt64Array, Number)).toEqual([0, 1, 2, 0, 1, 1]);
    // left padding as a tokenizer may give it: positions count real tokens only
    expect(positionIdsFromMask([0, 0, 1, 1], 1, 4)).toEqual([1, 1, 0, 1]);
  });

  it('use_cache_branch false; GroupQueryAttention seqlens_k and total_sequence_length; 1-D mask_index', () => {
    const g = create(GraphProtoSchema, { name: 'roles' });
    g.input.push(
      makeValueInfo('use_cache_branch', DT.BOOL, [1]),
      makeValueInfo('seqlens_k', DT.INT32, ['batch_size']),
      makeValueInfo('total_seq', DT.INT32, []),
      makeValueInfo('lengths', DT.INT32, ['batch_size']),
      makeValueInfo('input_ids', DT.INT64, ['batch_size', 'sequence_length']),
    );
    const graph = new Graph(g);
    graph.addNode({ opType: 'If', inputs: ['use_cache_branch'], outputs: ['y'], attrs: { then_branch: create(GraphProtoSchema, { name: 't' }), else_branch: create(GraphProtoSchema, { name: 'e' }) } });
    graph.addNode({ opType: 'GroupQueryAttention', domain: 'com.microsoft', inputs: ['q', '', '', '', '', 'seqlens_k', 'total_seq'], outputs: ['o'] });
    graph.addNode({ opType: 'Attention', domain: 'com.microsoft', inputs: ['x', 'w', 'b', 'lengths'], outputs: ['a'] });
    const inputs = describeInputs(g);
    expect(Object.fromEntries(inputs.map((i) => [i.name, i.role]))).toEqual({ use_cache_branch: 'use_cache_branch', seqlens_k: 'seqlens_k', total_seq: 'total_sequence_length', lengths: 'kv_valid_length', input_ids: 'input_ids' });
    const b = batch(inputs, [{ input_ids: [5, 6, 7] }, { input_ids: [8] }]);
    expect([b.get('use_cache_branch')!.type, b.get('use_cache_branch')!.dims, Array.from(b.get('use_cache_branch')!.data as Uint8Array)]).toEqual(['bool', [1], [0]]);
    expect(Array.from(b.get('seqlens_k')!.data as Int32Array)).toEqual([2, 0]);
    expect([b.get('total_seq')!.dims, Array.from(b.get('total_seq')!.data as Int32Array)]).toEqual([[], [3]]);
    expect(Array.from(b.get('lengths')!.data as Int32Array)).toEqual([3, 1]);
  });

  it('a static cache: zeros of its size, write index 0, valid length T (a causal reader never sees the padding)', () => {
    const model = buildLlama({ vocabSize: 64, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32, maxPositions: 32, cache: 'static', cacheLength: 8 });
    const b = batch(describeInputs(model.proto.graph!), [{ input_ids: [5, 6, 7] }, { input_ids: [8] }]);
    const cache = b.get('past_key_values.0.key')!;
    expect(cache.dims).toEqual([2, 2, 8, 8]);
    expect((cache.data as Float32Array).every((v) => v === 0)).toBe(true);
    expect(Array.from(b.get('write_indices')!.data as BigInt64Array, Number)).toEqual([0, 0]);
    expect(Array.from(b.get('nonpad_kv_seqlen')!.data as BigInt64Array, Number)).toEqual([3, 3]);
  });
});

describe('a cache input changes nothing: same loss and θ gradients as the export without one', () => {
  const gpt2: Gpt2Config = { vocabSize: 64, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 32, seed: 3 };
  it.each([
    ['stacked past_N [2, B, H, P, D]', { cache: 'stacked' }],
    ["optimum's past_key_values.N.key/value and position_ids", { cache: 'split', positionIdsInput: true }],
  ] as const)('GPT-2 with %s', async (_name, variant) => {
    const want = await lmGradients(buildGpt2(gpt2), 'c_attn,c_fc');
    const got = await lmGradients(buildGpt2({ ...gpt2, ...variant }), 'c_attn,c_fc');
    expect(expectSameGradients(got, want, 0)).toBe(0);
  }, 60_000);

  it('fp16 GPT-2 with an fp16 cache (filled as Uint16Array), against the fp16 export without one', async () => {
    const half = { ...gpt2, conv1d: 'matmul' as const };
    const want = await lmGradients(toHalfPrecision(buildGpt2(half)), 'c_attn,c_fc');
    const got = await lmGradients(toHalfPrecision(buildGpt2({ ...half, cache: 'split', positionIdsInput: true })), 'c_attn,c_fc');
    expect(expectSameGradients(got, want, 0)).toBe(0);
  }, 60_000);

  it('LLaMA with an opset-24 static cache (TensorScatter + Attention with nonpad_kv_seqlen), against the eager opset-20 export', async () => {
    const llama: LlamaConfig = { vocabSize: 64, hiddenSize: 16, numLayers: 2, numHeads: 4, numKeyValueHeads: 2, intermediateSize: 32, maxPositions: 32, seed: 3 };
    const want = await lmGradients(buildLlama({ ...llama, opset: 20 }), 'q_proj,v_proj,down_proj');
    const got = await lmGradients(buildLlama({ ...llama, cache: 'static', cacheLength: 16 }), 'q_proj,v_proj,down_proj');
    // float32 noise of a different attention kernel (measured 2e-7)
    const worst = expectSameGradients(got, want, 1e-5);
    console.info(`static cache vs eager: max rel diff ${worst.toExponential(2)} over loss and θ gradients`);
  }, 60_000);

  it('probing takes a real fp16 batch (fp16 caches as Uint16Array) and builds the same gradients', async () => {
    const model = toHalfPrecision(buildGpt2({ ...gpt2, conv1d: 'matmul', cache: 'split', positionIdsInput: true }));
    const adapted = inject(model, { targets: 'c_attn', r: 4, seed: 2 }).model;
    const batch = readBatches(lmData, adapted, { task: 'causal-lm' })[0]!;
    expect(batch['past_key_values.0.key']!.type).toBe('float16');
    const probedReal = await buildGradModel(nodeRuntime, adapted, { task: 'causal-lm', batch });
    const probedSynthetic = await buildGradModel(nodeRuntime, adapted, { task: 'causal-lm' });
    const feeds = readBatches(lmData, probedReal.model, { task: 'causal-lm', exclude: new Set(probedReal.params), labels: probedReal.labels })[0]!;
    const a = await runGradModel(nodeRuntime, probedReal, feeds);
    const b = await runGradModel(nodeRuntime, probedSynthetic, feeds);
    expect(a.loss).toBe(b.loss);
    for (const [k, g] of a.grads) expect(Array.from(g.data)).toEqual(Array.from(b.grads.get(k)!.data));
  }, 60_000);
});

describe('real decoder exports train end to end', () => {
  it('gpt2_past.onnx ([2, B, H, P, D] past, no LM head): token-cls on last_state trains, the past fed empty', async () => {
    const adapted = join(dir, 'gpt2_past.onnx');
    expect((await runCli(['inject', join(REAL, 'gpt2_past.onnx'), '-o', adapted, '--targets', 'transformer.h.11.attn.c_proj,transformer.h.11.mlp.c_proj', '--rank', '4'])).code).toBe(0);
    const data = join(dir, 'g2p.jsonl');
    // input_ids is declared [batch, 1]: one token per example; 4 "classes" = the hidden size
    writeFileSync(data, Array.from({ length: 16 }, (_, i) => JSON.stringify({ input_ids: [(i * 7) % 20], labels: [i % 4] })).join('\n') + '\n');
    const run = join(dir, 'g2p-run');
    const t = await runCli(['train', adapted, '--task', 'token-cls', '--data', data, '--eval', data, '-o', run, '--steps', '8', '--batch-size', '4', '--lr', '5e-2', '--ep', 'cpu', '--threads', '1']);
    expect(t.code, t.stderr).toBe(0);
    const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'eval_loss' in l);
    expect(evals.at(-1)!.eval_loss).toBeLessThan(evals[0]!.eval_loss!);
  }, 60_000);

  it("ONNX Runtime's fused tiny GPT-2 (Attention with past and mask_index): lm_head trains; the loss is HF's on the original model with hand-made feeds", async () => {
    const path = join(REAL, 'tiny-random-gpt2-fp32-past.onnx');
    const rows = [[5, 900, 31, 7, 4], [12, 44], [600, 1, 2, 3]];
    const data = join(dir, 'trg.jsonl');
    writeFileSync(data, rows.map((ids) => JSON.stringify({ input_ids: ids })).join('\n') + '\n');
    const adapted = inject(loadModel(path), { targets: 'lm_head', r: 4, seed: 1 });
    const r = await computeGradients(adapted.model, { data, task: 'causal-lm' });

    // The reference: B == 0 at init, so the adapted model computes the original's logits.
    const B = rows.length;
    const T = 5;
    const ids = new Int32Array(B * T);
    const mask = new Int32Array(B * T);
    const positions = new Int32Array(B * T).fill(1); // HF gives padding position 1
    rows.forEach((row, b) => row.forEach((v, t) => ((ids[b * T + t] = v), (mask[b * T + t] = 1), (positions[b * T + t] = t))));
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      input_ids: new ort.Tensor('int32', ids, [B, T]),
      attention_mask: new ort.Tensor('int32', mask, [B, T]),
      position_ids: new ort.Tensor('int32', positions, [B, T]),
    };
    for (let i = 0; i < 5; i++) feeds[`past_${i}`] = new ort.Tensor('float32', new Float32Array(0), [2, B, 4, 0, 8]);
    const { session } = await createSession(path, { ep: 'cpu' });
    const logits = (await session.run(feeds)).logits!.data as Float32Array;
    await session.release();
    const V = 1000;
    let sum = 0;
    let n = 0;
    rows.forEach((row, b) => {
      for (let t = 0; t + 1 < row.length; t++) {
        const at = (b * T + t) * V;
        let max = -Infinity;
        for (let c = 0; c < V; c++) max = Math.max(max, logits[at + c]!);
        let z = 0;
        for (let c = 0; c < V; c++) z += Math.exp(logits[at + c]! - max);
        sum += max + Math.log(z) - logits[at + row[t + 1]!]!;
        n++;
      }
    });
    expect(Math.abs(r.loss - sum / n) / (sum / n)).toBeLessThan(1e-5);
    const run = join(dir, 'trg-run');
    const modelPath = join(dir, 'trg.onnx');
    saveModel(adapted.model, modelPath);
    const t = await runCli(['train', modelPath, '--task', 'causal-lm', '--data', data, '-o', run, '--steps', '2', '--batch-size', '2', '--ep', 'cpu']);
    expect(t.code, t.stderr).toBe(0);
  }, 60_000);
});
