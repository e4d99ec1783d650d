/**
 * Every real export with a trainable head (test/fixtures/real-exports, see its README), and the
 * fp16 / opset-24 static-cache / ORT-fused variants generated with tools/lib and test/helpers,
 * fine-tuned end to end through the CLI with the default targets:
 *
 * - `inject` without --targets;
 * - `train --steps 3` on a few examples made here (token ids below the model's vocabulary,
 *   labels of the task), every logged loss finite;
 * - `merge --checkpoint <run dir>` gives the original graph node for node: the same nodes
 *   (byte for byte), inputs, outputs and initializer names; only the target weights' values
 *   differ;
 * - the merged model runs in ONNX Runtime, and its outputs equal those of the adapted model
 *   holding the trained parameters (`inject --init <run dir>`).
 *
 * Heads: the keras2onnx BERT QA names its start/end logits `output_1`, `output_2`; the legacy
 * BERT pre-training export is trained as a masked LM on `prediction_scores`; the torch GPT-2 with
 * past and the Whisper decoder layer have no LM head, so token classification runs on their
 * hidden states (4 and 10 "classes" = the hidden size). The Whisper layer's inputs (hidden
 * states, fixed-length self- and cross-attention caches) are float tensors of a fixed batch of 2,
 * so its data is a safetensors file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { buildFusedBert } from '../helpers/fused-bert.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { readBatches } from '../../src/node/batches.ts';
import { writeSafetensors } from '../../src/node/safetensors-files.ts';
import type { SafeTensor } from '../../src/formats/safetensors.ts';
import { readAdapterMeta } from '../../src/adapter/adapter-meta.ts';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { NodeProtoSchema, toBinary } from '../../src/onnx/proto.ts';
import { tensorBytes } from '../../src/onnx/tensor.ts';
import { halfBitsToFloat } from '../../src/onnx/dtype.ts';
import type { Task } from '../../src/data/tasks.ts';
import { buildGpt2, buildLlama } from '../../tools/lib/transformers.ts';
import { toHalfPrecision } from '../../tools/lib/half.ts';

ort.env.logLevel = 'error';

const REAL = join(FIXTURES_DIR, 'real-exports');
const dir = tempDir('peanut-real-train-');

interface Case {
  name: string;
  /** The model file (a real export, or a generated one written to the temp dir). */
  model: () => string;
  task: Task;
  /** `--head`, where the predictions are not `logits`. */
  head?: string;
  /** Writes the training data; returns its path. */
  data: (name: string) => string;
  /** The number of default targets `inject` adapts. */
  targets: number;
  /** Largest |merged − adapted| over the outputs (float32: summation-order noise; fp16: its rounding). */
  tol: number;
}

const jsonl = (name: string, rows: object[]) => {
  const path = join(dir, `${name}.jsonl`);
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
};

/** `n` rows of `len(i)` token ids below `vocab`. */
const ids = (n: number, vocab: number, len: (i: number) => number) => Array.from({ length: n }, (_, i) => Array.from({ length: len(i) }, (_, j) => (i * 37 + j * 11 + 5) % vocab));

/** Causal-LM rows of uneven lengths (right padding inside a batch). */
const lmData = (vocab: number) => (name: string) => jsonl(name, ids(6, vocab, (i) => 2 + (i % 4)).map((input_ids) => ({ input_ids })));

const generated = (name: string, build: () => OnnxModel) => () => {
  const path = join(dir, `${name}.onnx`);
  saveModel(build(), path);
  return path;
};

const gpt2 = { vocabSize: 64, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 32, seed: 3, biasStd: 0.02 };

const CASES: Case[] = [
  {
    name: 'keras2onnx BERT QA (TFBertForQuestionAnswering): qa on output_1, output_2',
    model: () => join(REAL, 'TFBertForQuestionAnswering.onnx'),
    task: 'qa',
    head: 'output_1,output_2',
    // input_ids is declared [batch, 7]
    data: (name) => jsonl(name, ids(4, 20, () => 7).map((input_ids, i) => ({ input_ids, token_type_ids: [0, 0, 0, 1, 1, 1, 1], start_positions: i % 7, end_positions: (i + 2) % 7 }))),
    targets: 48,
    tol: 1e-5,
  },
  {
    name: 'legacy torch BERT pre-training (bert_toy_optimized): masked-lm on prediction_scores',
    model: () => join(REAL, 'bert_toy_optimized.onnx'),
    task: 'masked-lm',
    head: 'prediction_scores',
    data: (name) => jsonl(name, ids(4, 99, (i) => 4 + (i % 3)).map((input_ids) => ({ input_ids, labels: input_ids.map((v, j) => (j % 2 ? v : -100)) }))),
    targets: 10,
    tol: 1e-5,
  },
  {
    name: 'torch GPT-2 with [2, B, H, P, D] past (gpt2_past): token-cls on last_state',
    model: () => join(REAL, 'gpt2_past.onnx'),
    task: 'token-cls',
    head: 'last_state',
    // input_ids is declared [batch, 1]
    data: (name) => jsonl(name, Array.from({ length: 4 }, (_, i) => ({ input_ids: [(i * 7) % 20], labels: [i % 4] }))),
    targets: 12,
    tol: 1e-5,
  },
  {
    name: "ONNX Runtime's fused tiny GPT-2 (com.microsoft Attention with past): causal-lm",
    model: () => join(REAL, 'tiny-random-gpt2-fp32-past.onnx'),
    task: 'causal-lm',
    data: lmData(1000),
    targets: 5,
    tol: 1e-5,
  },
  {
    name: 'Whisper decoder layer (MultiHeadAttention, fixed-length caches): token-cls on output_hidden_states',
    model: () => join(REAL, 'whisper_hf_fp32_decoder_attention_with_past.onnx'),
    task: 'token-cls',
    head: 'output_hidden_states',
    data: (name) => {
      const N = 4;
      const f = (shape: number[], s: number) => ({ dtype: 'F32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(s + 0.37 * i)) });
      const path = join(dir, `${name}.safetensors`);
      writeSafetensors(
        path,
        new Map<string, SafeTensor>([
          ['input_hidden_states', f([N, 1, 10], 1)],
          ['past_key_self', f([N, 2, 10, 5], 2)],
          ['past_value_self', f([N, 2, 10, 5], 3)],
          ['past_key_cross', f([N, 2, 20, 5], 4)],
          ['past_value_cross', f([N, 2, 20, 5], 5)],
          ['labels', { dtype: 'I64' as const, shape: [N, 1], data: BigInt64Array.from([1n, 3n, 5n, 7n]) }],
        ]),
      );
      return path;
    },
    targets: 3,
    tol: 1e-5,
  },
  {
    name: 'BERT as the ORT optimizer fuses it (EmbedLayerNormalization, packed-weight Attention, SkipLayerNormalization, BiasGelu): seq-cls',
    model: generated('fused-bert', () => buildFusedBert({ vocab: 50, hidden: 16, layers: 2, heads: 2, intermediate: 32, positions: 32, labels: 3, seed: 3 })),
    task: 'seq-cls',
    data: (name) => jsonl(name, ids(4, 50, (i) => 3 + (i % 3)).map((input_ids, i) => ({ input_ids, labels: i % 3 }))),
    targets: 4,
    tol: 1e-5,
  },
  {
    name: "fp16 GPT-2 with optimum's past_key_values.N.key/value and position_ids: causal-lm",
    model: generated('gpt2-fp16', () => toHalfPrecision(buildGpt2({ ...gpt2, conv1d: 'matmul', cache: 'split', positionIdsInput: true }))),
    task: 'causal-lm',
    data: lmData(64),
    targets: 2,
    tol: 2e-2,
  },
  {
    name: 'opset-24 LLaMA with a static cache (TensorScatter, Attention with nonpad_kv_seqlen, grouped-query): causal-lm',
    model: generated('llama-static', () => buildLlama({ vocabSize: 64, hiddenSize: 16, numLayers: 2, numHeads: 4, numKeyValueHeads: 2, intermediateSize: 32, maxPositions: 32, seed: 3, cache: 'static', cacheLength: 8 })),
    task: 'causal-lm',
    data: lmData(64),
    targets: 4,
    tol: 1e-5,
  },
];

async function cli(...argv: string[]): Promise<string> {
  const r = await runCli(argv);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toMatch(/error|warning/i);
  return r.stdout;
}

/** The first batch of `data` as feeds of `model`'s own inputs (labels left out). */
function feedsOf(model: OnnxModel, data: string, task: Task): Record<string, ort.Tensor> {
  const batch = readBatches(data, model, { task, batchSize: 2 })[0]!;
  const names = new Set(graphOf(model).input.map((v) => v.name));
  return Object.fromEntries(Object.entries(batch).filter(([k]) => names.has(k)).map(([k, t]) => [k, new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims as number[])]));
}

async function outputsOf(model: OnnxModel, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float64Array>> {
  const { session } = await createSession(encodeModel(model.proto), { ep: 'cpu', threads: 1 });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.type === 'float16' ? Float64Array.from(v.data as Uint16Array, halfBitsToFloat) : Float64Array.from(v.data as Float32Array)]));
  } finally {
    await session.release();
  }
}

const nodeBytes = (m: OnnxModel) => graphOf(m).node.map((n) => Buffer.from(toBinary(NodeProtoSchema, n)).toString('base64'));

describe('real exports and generated variants fine-tune through the CLI with the default targets', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const slug = c.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40);
      const work = join(dir, slug);
      const path = c.model();
      const data = c.data(slug);
      const adapted = `${work}-adapted.onnx`;
      const inject = await cli('inject', path, '-o', adapted, '--rank', '4');
      expect(inject).toMatch(new RegExp(`adapted ${c.targets} layer\\(s\\) with peanut \\(default targets for `));

      const run = `${work}-run`;
      const head = c.head ? ['--head', c.head] : [];
      await cli('train', adapted, '--task', c.task, ...head, '--data', data, '-o', run, '--steps', '3', '--batch-size', '2', '--lr', '1e-2', '--ep', 'cpu', '--threads', '1', '--save-every', '0');
      const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'loss' in l);
      expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
      for (const s of steps) expect(Number.isFinite(s.loss)).toBe(true);

      const mergedPath = `${work}-merged.onnx`;
      await cli('merge', adapted, '--checkpoint', run, '-o', mergedPath);
      const original = loadModel(path);
      const merged = loadModel(mergedPath);
      const og = graphOf(original);
      const mg = graphOf(merged);
      // Node for node the original graph; only the target weights' values differ.
      expect(nodeBytes(merged)).toEqual(nodeBytes(original));
      expect(mg.input.map((v) => v.name)).toEqual(og.input.map((v) => v.name));
      expect(mg.output.map((v) => v.name)).toEqual(og.output.map((v) => v.name));
      expect(mg.initializer.map((t) => [t.name, t.dataType])).toEqual(og.initializer.map((t) => [t.name, t.dataType]));
      const meta = readAdapterMeta(loadModel(adapted))!;
      expect(meta.targets.every((t) => t.weightSource === 'initializer')).toBe(true);
      const weights = new Set(meta.targets.map((t) => t.weight));
      mg.initializer.forEach((t, i) => {
        const same = Buffer.from(tensorBytes(t, merged.baseDir)).equals(Buffer.from(tensorBytes(og.initializer[i]!, original.baseDir)));
        expect(same, t.name).toBe(!weights.has(t.name));
      });

      // The merged model runs, and computes what the adapted model with the trained θ computes.
      const trained = `${work}-trained.onnx`;
      await cli('inject', path, '-o', trained, '--rank', '4', '--init', run);
      const feeds = feedsOf(original, data, c.task);
      const want = await outputsOf(loadModel(trained), feeds);
      const got = await outputsOf(merged, feeds);
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      let worst = 0;
      for (const [k, y] of Object.entries(got)) {
        const x = want[k]!;
        expect(y.length, k).toBe(x.length);
        for (let i = 0; i < y.length; i++) {
          expect(Number.isFinite(y[i]!), `${k}[${i}]`).toBe(true);
          worst = Math.max(worst, Math.abs(y[i]! - x[i]!));
        }
      }
      expect(worst).toBeLessThanOrEqual(c.tol);
    });
  }
});
