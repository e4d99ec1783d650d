/**
 * Gradient models of generated transformer exports (tools/lib: BERT, GPT-2, LLaMA, ViT in their
 * export variants: opsets 14/17/20, decomposed or fused LayerNorm, erf/tanh/op GELU, Gemm or
 * MatMul heads, rotary tables or computed, GQA, RMSNorm by Reciprocal or Div, Trilu or Range
 * masks, Conv patch embeddings). θ gets random non-zero values; each θ tensor's gradient is
 * checked by central differences of the loss through the same ORT graph along two directions:
 * the gradient's own (catches scale errors) and a random one (catches wrong directions).
 */
import type { Feeds, Session } from '../../src/runtime/session.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { afterAll, describe, expect, it } from 'vitest';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { inject, type InjectOptions } from '../../src/adapter/inject.ts';
import { paramNames } from '../../src/adapter/adapter-meta.ts';
import { buildGradModel } from '../../src/train/grad-model.ts';
import type { Task } from '../../src/train/loss.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { buildBert, buildGpt2, buildLlama, buildVit } from '../../tools/lib/transformers.ts';
import { randomValues } from '../helpers/gradcheck.ts';

const sessions: Session[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

const B = 2;
const S = 6;

function textBatch(vocab: number, task: Task, opts: { tokenTypes?: boolean; classes?: number } = {}): Feeds {
  const n = B * S;
  const ids = Array.from({ length: n }, (_, i) => 1 + ((i * 37 + 11) % (vocab - 1)));
  // the last row is right-padded by 2
  const mask = Array.from({ length: n }, (_, i) => (Math.floor(i / S) === B - 1 && i % S >= S - 2 ? 0 : 1));
  const feeds: Feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v, i) => (mask[i] ? BigInt(v) : 0n)), [B, S]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask, BigInt), [B, S]),
  };
  if (opts.tokenTypes) feeds.token_type_ids = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => (i % S >= S / 2 ? 1n : 0n)), [B, S]);
  if (task === 'causal-lm') feeds.labels = new ort.Tensor('int64', BigInt64Array.from(ids, (v, i) => (mask[i] ? BigInt(v) : -100n)), [B, S]);
  else if (task === 'regression') feeds.labels = new ort.Tensor('float32', Float32Array.from([0.7, -1.2]), [B]);
  else feeds.labels = new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt(i % (opts.classes ?? 2))), [B]);
  return feeds;
}

interface ArchCase {
  build: () => OnnxModel;
  task: Task;
  inject: InjectOptions;
  feeds: () => Feeds;
}

const bert = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxPositions: 64, numLabels: 3, seed: 7, biasStd: 0.02, initStd: 0.2 };
const llama = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 48, maxPositions: 64, seed: 7, initStd: 0.2 };
const gpt2 = { vocabSize: 64, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 64, seed: 7, biasStd: 0.02, initStd: 0.2 };
const vit = { imageSize: 16, patchSize: 4, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, numLabels: 5, seed: 7, biasStd: 0.02, initStd: 0.2 };
const small = { r: 4, seed: 1 };

const CASES: Array<[string, ArchCase]> = [
  ['BERT opset 14 (decomposed LayerNorm, erf GELU), seq-cls', { build: () => buildBert({ ...bert, opset: 14 }), task: 'seq-cls', inject: small, feeds: () => textBatch(64, 'seq-cls', { tokenTypes: true, classes: 3 }) }],
  ['BERT opset 17 (LayerNormalization), all-linear, depth 1 gelu', { build: () => buildBert({ ...bert, opset: 17 }), task: 'seq-cls', inject: { ...small, targets: 'all-linear', depth: 1, act: 'gelu' }, feeds: () => textBatch(64, 'seq-cls', { tokenTypes: true, classes: 3 }) }],
  ['BERT opset 20 (Gelu op, Slice first token, MatMul head), regression', { build: () => buildBert({ ...bert, numLabels: 1, opset: 20, firstToken: 'slice', head: 'matmul', positionIds: 'range' }), task: 'regression', inject: { ...small, act: 'tanh' }, feeds: () => textBatch(64, 'regression', { tokenTypes: true }) }],
  ['GPT-2 (Conv1D as Gemm), causal-lm', { build: () => buildGpt2({ ...gpt2, opset: 14 }), task: 'causal-lm', inject: { ...small, scaling: 0.5 }, feeds: () => textBatch(64, 'causal-lm') }],
  ['GPT-2 opset 17 (MatMul Conv1D, fused LayerNorm), silu, depth 2', { build: () => buildGpt2({ ...gpt2, opset: 17, conv1d: 'matmul' }), task: 'causal-lm', inject: { ...small, act: 'silu', depth: 2 }, feeds: () => textBatch(64, 'causal-lm') }],
  ['LLaMA (rotary tables, RMSNorm Reciprocal, Trilu mask)', { build: () => buildLlama({ ...llama, opset: 14 }), task: 'causal-lm', inject: small, feeds: () => textBatch(64, 'causal-lm') }],
  ['LLaMA opset 18 (computed rotary, Div RMSNorm, Range mask, GQA, tied head)', { build: () => buildLlama({ ...llama, opset: 18, rotary: 'computed', rmsInverse: 'div', causalMask: 'range', numKeyValueHeads: 2, tieWordEmbeddings: true }), task: 'causal-lm', inject: { ...small, act: 'gelu_tanh' }, feeds: () => textBatch(64, 'causal-lm') }],
  [
    'ViT (Conv patch embedding), image-cls',
    {
      build: () => buildVit({ ...vit, opset: 17 }),
      task: 'image-cls',
      inject: { ...small, targets: 'query,value' },
      feeds: () => ({
        pixel_values: new ort.Tensor('float32', Float32Array.from(randomValues(B * 3 * 16 * 16, 5)), [B, 3, 16, 16]),
        labels: new ort.Tensor('int64', BigInt64Array.from([3n, 1n]), [B]),
      }),
    },
  ],
];

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

describe('gradient models of generated transformer exports: directional finite differences', () => {
  it.each(CASES)('%s', async (_label, c) => {
    const base = c.build();
    const probe = inject(base, c.inject);
    // Random non-zero θ (B too, so every gradient is non-zero).
    const init = new Map<string, Float32Array>();
    for (const [i, key] of paramNames(probe.meta).entries()) init.set(key, Float32Array.from(randomValues(probe.state.get(key)!.length, 100 + i, -0.3, 0.3)));
    const { model } = inject(base, { ...c.inject, init });
    const gm = await buildGradModel(nodeRuntime, model, { task: c.task });
    const { session } = await createSession(encodeModel(gm.model.proto), { memPattern: false });
    sessions.push(session);
    const feeds = c.feeds();
    const run = async (theta: Map<string, Float32Array>) => {
      const f: Feeds = { ...feeds };
      for (const p of gm.params) f[p] = new ort.Tensor('float32', theta.get(p)!, [...gm.initialParams.get(p)!.dims].map(Number));
      return session.run(f);
    };
    const out = await run(init);
    const loss0 = (out[gm.loss]!.data as Float32Array)[0]!;
    expect(Number.isFinite(loss0)).toBe(true);
    const report: string[] = [];
    let worst = 0;
    // At most 16 θ tensors per model, evenly spread (all-linear has dozens).
    const stride = Math.max(1, Math.ceil(gm.params.length / 16));
    for (const [pi, p] of gm.params.entries()) {
      if (pi % stride !== 0) continue;
      const g = out[gm.grads.get(p)!]!.data as Float32Array;
      const gNorm = Math.sqrt(dot(g, g));
      expect(gNorm, `|grad ${p}|`).toBeGreaterThan(0);
      const rnd = randomValues(g.length, 7 + pi);
      const rNorm = Math.sqrt(dot(rnd, rnd));
      for (const [kind, dir] of [
        ['grad', Array.from(g, (v) => v / gNorm)],
        ['random', rnd.map((v) => v / rNorm)],
      ] as Array<[string, number[]]>) {
        const analytic = dot(g, dir);
        const h = Math.min(0.3, 3e-3 / Math.max(gNorm, 1e-9));
        const plus = new Map(init);
        const minus = new Map(init);
        plus.set(p, init.get(p)!.map((v, i) => v + h * dir[i]!));
        minus.set(p, init.get(p)!.map((v, i) => v - h * dir[i]!));
        const lp = ((await run(plus))[gm.loss]!.data as Float32Array)[0]!;
        const lm = ((await run(minus))[gm.loss]!.data as Float32Array)[0]!;
        const numeric = (lp - lm) / (2 * h);
        // float32 loss: relative to |grad| (the largest directional derivative)
        const err = Math.abs(numeric - analytic) / gNorm;
        worst = Math.max(worst, err);
        if (err > 2e-2) report.push(`${p} (${kind}): analytic ${analytic.toExponential(4)} numeric ${numeric.toExponential(4)} |g| ${gNorm.toExponential(2)}`);
      }
    }
    console.log(`${_label}: ${gm.params.length} θ tensors, loss ${loss0.toFixed(5)}, worst directional error ${worst.toExponential(2)} of |g|`);
    expect(report, report.join('\n')).toEqual([]);
  });
});
