/**
 * Target discovery, inject and merge on real third-party exports (test/fixtures/real-exports,
 * see its README) and on generated exports renamed to legacy numbering (no module path in any
 * name), through the CLI:
 *
 * - `inspect --json` lists the default targets with their derived names and how each name was
 *   derived, and says which architecture was detected from what;
 * - `inject` without --targets succeeds, and the adapted model with the default init (B = 0)
 *   gives outputs identical to the original's in ONNX Runtime;
 * - `merge` with random non-zero B gives the original graph node for node (target weights
 *   changed, everything else identical) and outputs equal to the adapted model's within 1e-5.
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { valueInfoType } from '../../src/onnx/graph.ts';
import { NodeProtoSchema, toBinary } from '../../src/onnx/proto.ts';
import { tensorBytes, tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { readSafetensors, writeSafetensors } from '../../src/node/safetensors-files.ts';
import { type SafeTensor } from '../../src/formats/safetensors.ts';
import { discoverTargets } from '../../src/adapter/targets.ts';
import { Random } from '../../src/util/random.ts';
import { buildBert, buildGpt2, buildLlama, buildVit } from '../../tools/lib/transformers.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { withLegacyNames } from '../helpers/legacy-names.ts';
import { buildFusedBert } from '../helpers/fused-bert.ts';
import { toHalfPrecision } from '../helpers/half.ts';

ort.env.logLevel = 'error';

const REAL = join(FIXTURES_DIR, 'real-exports');
const dir = tempDir('peanut-real-exports-');

interface Case {
  name: string;
  /** Model file (real exports) or a generated model written to the temp dir. */
  path: () => string;
  /** Symbolic dims of the inputs. */
  dims: Record<string, number>;
  /** Integer input values by input name and flat index. */
  ints?: (input: string, i: number, shape: number[]) => number;
  architecture: { modelType: string; source: 'module-names' | 'graph-structure' };
  /** The default targets, in graph order. */
  targets: string[];
  /** How their module names were derived. */
  naming: 'node-name' | 'weight-name' | 'structure';
  /** Candidates that are output heads. */
  heads: string[];
}

const layers = (n: number, names: (i: number) => string[]) => Array.from({ length: n }, (_, i) => names(i)).flat();

const idsBelow = (vocab: number) => (input: string, i: number) => (input.includes('mask') ? 1 : input.includes('type') ? i % 2 : (i * 7 + 3) % vocab);

function generated(name: string, build: () => OnnxModel, rename = withLegacyNames): () => string {
  return () => {
    const path = join(dir, `${name}.onnx`);
    saveModel(rename(build()), path);
    return path;
  };
}

const bertConfig = { vocabSize: 64, hiddenSize: 32, numLayers: 3, numHeads: 4, intermediateSize: 64, maxPositions: 64, numLabels: 3, seed: 7, biasStd: 0.02 };
const gpt2Config = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 64, seed: 7, biasStd: 0.02 };
const llamaConfig = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, numKeyValueHeads: 2, intermediateSize: 48, maxPositions: 64, seed: 7 };
const textDims = { batch_size: 2, sequence_length: 5 };

const CASES: Case[] = [
  {
    name: 'keras2onnx BERT QA (TFBertForQuestionAnswering)',
    path: () => join(REAL, 'TFBertForQuestionAnswering.onnx'),
    dims: { batch_size: 2 },
    ints: idsBelow(20),
    architecture: { modelType: 'bert', source: 'graph-structure' },
    targets: layers(24, (i) => [`bert.encoder.layer.${i}.attention.self.value`, `bert.encoder.layer.${i}.attention.self.query`]),
    naming: 'structure',
    heads: ['tf_bert_for_question_answering_qa_outputs_Tensordot_MatMul_add'],
  },
  {
    name: 'legacy torch BERT pre-training (bert_toy_optimized)',
    path: () => join(REAL, 'bert_toy_optimized.onnx'),
    dims: { batch: 2, max_seq_len_in_batch: 4 },
    ints: idsBelow(99),
    architecture: { modelType: 'bert', source: 'graph-structure' },
    targets: layers(5, (i) => [`bert.encoder.layer.${i}.attention.self.query`, `bert.encoder.layer.${i}.attention.self.value`]),
    naming: 'structure',
    heads: ['MatMul_612', 'cls.seq_relationship'],
  },
  {
    name: 'GPT-2 with past, Conv1D as Gemm (gpt2_past)',
    path: () => join(REAL, 'gpt2_past.onnx'),
    dims: { batch_size: 2, seq_len: 3 },
    ints: idsBelow(20),
    architecture: { modelType: 'gpt2', source: 'graph-structure' },
    targets: layers(12, (i) => [`transformer.h.${i}.attn.c_attn`]),
    naming: 'structure',
    heads: [],
  },
  {
    name: 'ORT-fused GPT-2 LM with com.microsoft Attention (tiny-random-gpt2)',
    path: () => join(REAL, 'tiny-random-gpt2-fp32-past.onnx'),
    dims: { batch_size: 2, seq_len: 3, past_seq_len: 2, total_seq_len: 5 },
    ints: (input, i, shape) => (input === 'position_ids' ? 2 + (i % shape[1]!) : input.includes('mask') ? 1 : (i * 37 + 5) % 1000),
    architecture: { modelType: 'gpt2', source: 'module-names' },
    targets: layers(5, (i) => [`transformer.h.${i}.attn.c_attn`]),
    naming: 'weight-name',
    heads: ['lm_head'],
  },
  {
    name: 'Whisper decoder layer with MultiHeadAttention',
    path: () => join(REAL, 'whisper_hf_fp32_decoder_attention_with_past.onnx'),
    dims: {},
    architecture: { modelType: 'encoder-decoder', source: 'module-names' },
    targets: ['self_attn.q_proj', 'self_attn.v_proj', 'encoder_attn.q_proj'],
    naming: 'node-name',
    heads: [],
  },
  {
    name: 'BERT fused by ONNX Runtime (com.microsoft Attention with the packed q/k/v weight)',
    path: generated('fused-bert', () => buildFusedBert({ vocab: 50, hidden: 16, layers: 2, heads: 2, intermediate: 32, positions: 32, labels: 3, seed: 3 }), (m) => m),
    dims: textDims,
    ints: idsBelow(50),
    architecture: { modelType: 'bert', source: 'graph-structure' },
    targets: layers(2, (i) => [`bert.encoder.layer.${i}.attention.self.query`, `bert.encoder.layer.${i}.attention.self.value`]),
    naming: 'structure',
    heads: ['classifier'],
  },
  {
    name: 'generated BERT, opset 14, legacy names',
    path: generated('bert14', () => buildBert({ ...bertConfig, opset: 14 })),
    dims: textDims,
    ints: idsBelow(64),
    architecture: { modelType: 'bert', source: 'graph-structure' },
    targets: layers(3, (i) => [`bert.encoder.layer.${i}.attention.self.query`, `bert.encoder.layer.${i}.attention.self.value`]),
    naming: 'structure',
    heads: ['Gemm_366'],
  },
  {
    name: 'generated BERT, opset 17 (LayerNormalization), legacy names',
    path: generated('bert17', () => buildBert({ ...bertConfig, numLayers: 2, opset: 17, head: 'matmul' })),
    dims: textDims,
    ints: idsBelow(64),
    architecture: { modelType: 'bert', source: 'graph-structure' },
    targets: layers(2, (i) => [`bert.encoder.layer.${i}.attention.self.query`, `bert.encoder.layer.${i}.attention.self.value`]),
    naming: 'structure',
    heads: ['MatMul_208'],
  },
  {
    name: 'generated GPT-2, Conv1D as Gemm, legacy names',
    path: generated('gpt2-gemm', () => buildGpt2(gpt2Config)),
    dims: textDims,
    ints: idsBelow(64),
    architecture: { modelType: 'gpt2', source: 'graph-structure' },
    targets: layers(2, (i) => [`transformer.h.${i}.attn.c_attn`]),
    naming: 'structure',
    heads: ['MatMul_392'],
  },
  {
    name: 'generated GPT-2, Conv1D as MatMul + Add, legacy names',
    path: generated('gpt2-matmul', () => buildGpt2({ ...gpt2Config, conv1d: 'matmul' })),
    dims: textDims,
    ints: idsBelow(64),
    architecture: { modelType: 'gpt2', source: 'graph-structure' },
    targets: layers(2, (i) => [`transformer.h.${i}.attn.c_attn`]),
    naming: 'structure',
    heads: ['MatMul_280'],
  },
  {
    name: 'generated LLaMA (grouped-query attention), legacy names',
    path: generated('llama', () => buildLlama(llamaConfig)),
    dims: textDims,
    ints: idsBelow(64),
    architecture: { modelType: 'llama', source: 'graph-structure' },
    targets: layers(2, (i) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.v_proj`]),
    naming: 'structure',
    heads: ['MatMul_398'],
  },
];

/** Deterministic feeds for every graph input. */
function feedsFor(model: OnnxModel, c: Case): Record<string, ort.Tensor> {
  const g = graphOf(model);
  const inits = new Set(g.initializer.map((t) => t.name));
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of g.input) {
    if (inits.has(v.name)) continue;
    const t = valueInfoType(v)!;
    const shape = t.dims!.map((d) => (typeof d === 'number' ? d : c.dims[d!] ?? 1));
    const n = shape.reduce((a, b) => a * b, 1);
    const int = (i: number) => c.ints!(v.name, i, shape);
    if (t.elemType === 1) feeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + 0.3)), shape);
    else if (t.elemType === 7) feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(int(i))), shape);
    else if (t.elemType === 6) feeds[v.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, (_, i) => int(i)), shape);
    else throw new Error(`no feed for input '${v.name}' of type ${t.elemType}`);
  }
  return feeds;
}

async function run(model: OnnxModel, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const { session } = await createSession(encodeModel(model.proto), { ep: 'cpu', threads: 1 });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  let m = 0;
  for (const [k, x] of Object.entries(a)) {
    const y = b[k]!;
    expect(y.length).toBe(x.length);
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}

interface Report {
  architecture?: { modelType: string; source: string; evidence: string };
  targets?: string;
  candidates: Array<{ module: string; selected: boolean; isHead: boolean; naming: { from: string; pattern?: string; detail?: string }; reaches: string[]; op: string; domain?: string }>;
}

async function cliOk(...argv: string[]): Promise<string> {
  const r = await runCli(argv);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

for (const c of CASES) {
  describe(c.name, () => {
    let path: string;
    let original: OnnxModel;
    let feeds: Record<string, ort.Tensor>;
    let base: Record<string, Float32Array>;
    const work = join(dir, c.name.replace(/[^A-Za-z0-9]+/g, '-'));
    beforeAll(async () => {
      mkdirSync(work, { recursive: true });
      path = c.path();
      original = loadModel(path);
      feeds = feedsFor(original, c);
      base = await run(original, feeds);
    });

    it('inspect lists the default targets with derived names, and what the architecture was detected from', async () => {
      const report = JSON.parse(await cliOk('inspect', path, '--json', '--rank', '4')) as Report;
      expect(report.architecture).toMatchObject(c.architecture);
      expect(report.architecture!.evidence).toMatch(c.architecture.source === 'graph-structure' ? /^graph structure: \d+ layer/ : /^module names from the export's node\/weight names/);
      const selected = report.candidates.filter((x) => x.selected);
      expect(selected.map((x) => x.module)).toEqual(c.targets);
      for (const s of selected) {
        expect(s.naming.from).toBe(c.naming);
        if (c.naming === 'structure') expect(s.naming.detail).toMatch(/^layer \d+ in residual-stream order, attention (query|value|qkv): /);
      }
      expect(report.candidates.filter((x) => x.isHead).map((x) => x.module)).toEqual(c.heads);
      // Every selected layer reaches some output; the default targets never include a head.
      for (const s of selected) expect(s.reaches.length).toBeGreaterThan(0);
    });

    it('inject without --targets: default init gives the original outputs; merge with random B gives the original graph', async () => {
      const adaptedPath = join(work, 'adapted.onnx');
      const tweakerPath = join(work, 'tweaker.safetensors');
      const out = await cliOk('inject', path, '-o', adaptedPath, '--rank', '4', '--save-tweaker', tweakerPath);
      expect(out).toMatch(new RegExp(`^architecture: ${c.architecture.modelType}, detected from `));
      expect(out).toMatch(new RegExp(`adapted ${c.targets.length} layer\\(s\\) with peanut \\(default targets for ${c.architecture.modelType}: `));
      const adapted = loadModel(adaptedPath);
      expect(maxAbsDiff(base, await run(adapted, feeds))).toBe(0);

      // Random non-zero B: the tweakers now change the weights.
      const tweaker = readSafetensors(tweakerPath).tensors;
      const rng = new Random(11);
      const moved = new Map<string, SafeTensor>();
      for (const [k, t] of tweaker) {
        const data = k.endsWith('peanut_B.weight') ? rng.fillUniform(new Float32Array((t.data as Float32Array).length), -2, 2) : (t.data as Float32Array);
        moved.set(k, { dtype: 'F32', shape: t.shape, data });
      }
      const ckpt = join(work, 'random-b.safetensors');
      writeSafetensors(ckpt, moved);
      const adaptedB = join(work, 'adapted-b.onnx');
      await cliOk('inject', path, '-o', adaptedB, '--rank', '4', '--init', ckpt);
      const mergedPath = join(work, 'merged.onnx');
      await cliOk('merge', adaptedPath, '--checkpoint', ckpt, '-o', mergedPath);

      const withB = await run(loadModel(adaptedB), feeds);
      expect(maxAbsDiff(base, withB)).toBeGreaterThan(1e-4);
      const merged = loadModel(mergedPath);
      expect(maxAbsDiff(withB, await run(merged, feeds))).toBeLessThanOrEqual(1e-5);

      // Node for node the original graph; only the target weights' values differ.
      const og = graphOf(original);
      const mg = graphOf(merged);
      expect(mg.node.map((n) => Buffer.from(toBinary(NodeProtoSchema, n)).toString('base64'))).toEqual(og.node.map((n) => Buffer.from(toBinary(NodeProtoSchema, n)).toString('base64')));
      expect(mg.input.map((v) => v.name)).toEqual(og.input.map((v) => v.name));
      expect(mg.output.map((v) => v.name)).toEqual(og.output.map((v) => v.name));
      expect(mg.initializer.map((t) => t.name)).toEqual(og.initializer.map((t) => t.name));
      const targets = discoverTargets(original).candidates.filter((x) => c.targets.includes(x.module));
      expect(targets.length).toBe(c.targets.length);
      const targetWeights = new Set(targets.map((x) => x.weight));
      mg.initializer.forEach((t, i) => {
        const o = og.initializer[i]!;
        if (targetWeights.has(t.name)) expect(Buffer.compare(Buffer.from(tensorBytes(t, merged.baseDir)), Buffer.from(tensorBytes(o, original.baseDir)))).not.toBe(0);
        else expect(Buffer.from(tensorBytes(t, merged.baseDir)).equals(Buffer.from(tensorBytes(o, original.baseDir)))).toBe(true);
      });
    });
  });
}

describe('generated exports: the structural path finds the layers the name path finds', () => {
  it.each([
    ['BERT', () => buildBert({ ...bertConfig, opset: 14 }), false],
    ['BERT fp16', () => buildBert({ ...bertConfig, opset: 17 }), true],
    ['GPT-2', () => buildGpt2(gpt2Config), false],
    ['GPT-2 fp16, Conv1D as MatMul', () => buildGpt2({ ...gpt2Config, conv1d: 'matmul' }), true],
    ['LLaMA', () => buildLlama(llamaConfig), false],
    ['LLaMA, computed rotary, Range mask, Div RMSNorm', () => buildLlama({ ...llamaConfig, rotary: 'computed', causalMask: 'range', rmsInverse: 'div' }), false],
  ] as const)('%s', (_, build, half) => {
    const named = discoverTargets(build());
    const legacy = discoverTargets(withLegacyNames(half ? toHalfPrecision(build()) : build()));
    expect(legacy.architecture?.source).toBe('graph-structure');
    expect(legacy.architecture?.modelType).toBe(named.architecture?.modelType);
    // Every layer inside a block gets, from structure alone, the module name its node name gave.
    const inBlocks = legacy.candidates.filter((c) => c.naming.from === 'structure');
    expect(inBlocks.length).toBe(named.candidates.filter((c) => !c.isHead && !c.module.includes('pooler')).length);
    for (const c of inBlocks) expect(c.module).toBe(named.candidates.find((n) => n.nodeIndex === c.nodeIndex)!.module);
    // The heads are the same layers.
    expect(legacy.candidates.filter((c) => c.isHead).map((c) => c.nodeIndex)).toEqual(named.candidates.filter((c) => c.isHead).map((c) => c.nodeIndex));
  });
});

describe('an architecture the structure does not identify (ViT, legacy names)', () => {
  let path: string;
  beforeAll(() => {
    path = join(dir, 'vit.onnx');
    saveModel(withLegacyNames(buildVit({ imageSize: 16, patchSize: 4, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, numLabels: 5, seed: 7 })), path);
  });

  it('inject without --targets says so, describes the structure, and lists the neutral names', async () => {
    const r = await runCli(['inject', path, '-o', join(dir, 'vit-adapted.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot tell the model's architecture \(graph structure: 2 layer\(s\), 2 self-attention block\(s\) with separate query\/key\/value projections, 2 MLP\(s\), normalisation before each block; no known architecture has this layout\), so there are no default targets; pass --targets .*e\.g\. --targets query,value.*Candidate modules: layer\.0\.attention\.query, layer\.0\.attention\.key/);
  });

  it('inspect reports it as not recognised; --targets query,value selects the neutral names', async () => {
    const text = await cliOk('inspect', path);
    expect(text).toMatch(/^architecture: not recognised \(graph structure: 2 layer/m);
    const report = JSON.parse(await cliOk('inspect', path, '--json', '--targets', 'query,value')) as Report;
    expect(report.architecture).toBeUndefined();
    expect(report.candidates.filter((x) => x.selected).map((x) => x.module)).toEqual(['layer.0.attention.query', 'layer.0.attention.value', 'layer.1.attention.query', 'layer.1.attention.value']);
    expect(report.candidates.find((x) => x.module === 'layer.1.mlp.fc2')!.naming).toMatchObject({ from: 'structure', pattern: expect.stringMatching(/^MLP fc1 → /), convention: 'neutral' });
  });
});

describe('structural names agree with what the exports name otherwise', () => {
  const load = (f: string) => discoverTargets(loadModel(join(REAL, f)));

  it('legacy BERT: every structural name is its weight name without `.weight_transposed`', () => {
    const d = load('bert_toy_optimized.onnx');
    const structural = d.candidates.filter((c) => c.naming.from === 'structure');
    expect(structural.length).toBe(30);
    for (const c of structural) expect(`${c.module}.weight_transposed`).toBe(c.weight);
  });

  it('GPT-2 with past: every structural name is `transformer.` + its weight name without `.weight_resize`', () => {
    const d = load('gpt2_past.onnx');
    const structural = d.candidates.filter((c) => c.naming.from === 'structure');
    expect(structural.length).toBe(48);
    for (const c of structural) expect(`transformer.${c.weight.replace(/\.weight_resize$/, '')}`).toBe(c.module);
  });

  it('keras2onnx BERT: layer indexes in residual-stream order are the `layer_._N` of the node names', () => {
    const d = load('TFBertForQuestionAnswering.onnx');
    const structural = d.candidates.filter((c) => c.naming.from === 'structure');
    expect(structural.length).toBe(144);
    for (const c of structural) expect(c.structure!.layer).toBe(Number(/layer_\._(\d+)\//.exec(c.node)![1]));
    const leaf = (c: (typeof structural)[number]) => /layer_\._\d+\/(.*)\/Tensordot/.exec(c.node)![1]!.replace(/\//g, '.');
    for (const c of structural) expect(c.module.endsWith(leaf(c))).toBe(true);
  });

  it('the Whisper layer is an encoder-decoder layer, not LLaMA', () => {
    const d = load('whisper_hf_fp32_decoder_attention_with_past.onnx');
    expect(d.architecture).toMatchObject({ modelType: 'encoder-decoder', source: 'module-names' });
    expect(d.architecture!.evidence).toMatch(/'encoder_attn\.q_proj' marks cross-attention layers/);
    expect(d.structure).toMatchObject({ attention: 1, crossAttention: 1, mlp: 1, fusedOps: ['MultiHeadAttention (com.microsoft)'] });
  });
});

describe('heads, all-linear and output reach', () => {
  const load = (f: string) => discoverTargets(loadModel(join(REAL, f)));

  it('all-linear leaves out every output head, whatever it is named', async () => {
    const cases: Array<[string, string[]]> = [
      ['bert_toy_optimized.onnx', ['MatMul_612', 'cls.seq_relationship']],
      ['TFBertForQuestionAnswering.onnx', ['tf_bert_for_question_answering_qa_outputs_Tensordot_MatMul_add']],
      ['tiny-random-gpt2-fp32-past.onnx', ['lm_head']],
      ['gpt2_past.onnx', []],
    ];
    for (const [file, heads] of cases) {
      const report = JSON.parse(await cliOk('inspect', join(REAL, file), '--json', '--targets', 'all-linear')) as Report;
      expect(report.candidates.filter((c) => !c.selected).map((c) => c.module)).toEqual(heads);
    }
  });

  it('records which outputs each layer reaches (bert_toy: the NSP and MLM heads reach one output each)', () => {
    const d = load('bert_toy_optimized.onnx');
    const by = new Map(d.candidates.map((c) => [c.module, c.reaches]));
    expect(by.get('bert.encoder.layer.4.output.dense')).toEqual(['prediction_scores', 'seq_relationship_score']);
    expect(by.get('bert.pooler.dense')).toEqual(['seq_relationship_score']);
    expect(by.get('cls.seq_relationship')).toEqual(['seq_relationship_score']);
    expect(by.get('MatMul_612')).toEqual(['prediction_scores']);
  });

  it('a layer inside a block that feeds a cache output is not a head (GPT-2 c_attn → present_N)', () => {
    const d = load('gpt2_past.onnx');
    const cAttn = d.candidates.find((c) => c.module === 'transformer.h.11.attn.c_attn')!;
    expect(cAttn.reaches).toEqual(['last_state', 'present_11']);
    expect(cAttn.isHead).toBe(false);
  });

  it('--targets suffixes select structural names', async () => {
    const report = JSON.parse(await cliOk('inspect', join(REAL, 'TFBertForQuestionAnswering.onnx'), '--json', '--targets', 'attention.output.dense,intermediate.dense')) as Report;
    expect(report.candidates.filter((c) => c.selected).map((c) => c.module)).toEqual(layers(24, (i) => [`bert.encoder.layer.${i}.attention.output.dense`, `bert.encoder.layer.${i}.intermediate.dense`]));
  });
});

describe('parts of a packed weight (fused BERT: query and value are columns of the Attention weight)', () => {
  it('merge changes the query and value columns, leaves the key columns, and matches the adapted model', async () => {
    const model = buildFusedBert({ vocab: 50, hidden: 16, layers: 2, heads: 2, intermediate: 32, positions: 32, labels: 3, seed: 3 });
    const d = discoverTargets(model);
    const parts = d.candidates.filter((c) => c.node === 'Attention_0');
    expect(parts.map((c) => [c.module, c.columns, c.in, c.out])).toEqual([
      ['bert.encoder.layer.0.attention.self.query', [0, 16], 16, 16],
      ['bert.encoder.layer.0.attention.self.key', [16, 32], 16, 16],
      ['bert.encoder.layer.0.attention.self.value', [32, 48], 16, 16],
    ]);
    const { inject } = await import('../../src/adapter/inject.ts');
    const { merge } = await import('../../src/adapter/merge.ts');
    const { mergeWithRuntime } = await import('../../src/runtime/merge-ort.ts');
    const rng = new Random(5);
    const first = inject(model, { r: 2 });
    const init = new Map([...first.state].map(([k, v]) => [k, k.endsWith('peanut_B.weight') ? rng.fillUniform(new Float32Array(v.length), -2, 2) : v]));
    const { model: adapted, meta } = inject(model, { r: 2, init });
    expect(meta.targets.filter((t) => t.node === 'Attention_0').map((t) => t.output)).toEqual(['/peanut_onnx/bert.encoder.layer.0.attention.self.query/W', '/peanut_onnx/bert.encoder.layer.0.attention.self.query/W']);
    const feeds = feedsFor(model, CASES.find((c) => c.name.startsWith('BERT fused'))!);
    const base = await run(model, feeds);
    const want = await run(adapted, feeds);
    expect(maxAbsDiff(base, want)).toBeGreaterThan(1e-4);
    for (const merged of [merge(adapted), await mergeWithRuntime(nodeRuntime, adapted)]) {
      expect(maxAbsDiff(want, await run(merged, feeds))).toBeLessThanOrEqual(1e-5);
      const name = parts[0]!.weight;
      const w0 = tensorToFloat32(graphOf(model).initializer.find((t) => t.name === name)!, model.baseDir);
      const w1 = tensorToFloat32(graphOf(merged).initializer.find((t) => t.name === name)!, merged.baseDir);
      const changed = (from: number, to: number) => Array.from({ length: 16 }, (_, i) => Array.from({ length: to - from }, (_, j) => w1[i * 48 + from + j] !== w0[i * 48 + from + j])).flat();
      expect(changed(0, 16).some(Boolean)).toBe(true);
      expect(changed(16, 32).some(Boolean)).toBe(false);
      expect(changed(32, 48).some(Boolean)).toBe(true);
    }
  });
});
