/**
 * The gradient model against the PyTorch oracles: every fixture, injected with its fixed tweaker
 * values, run on its batch: loss within 1e-5 relative, every θ gradient within 1e-3 of its own
 * tensor's largest entry (DESIGN.md section 5). Then the same graph at other batch/seq sizes, and
 * the frozen-weight pruning count.
 */
import type { Feeds } from '../../src/runtime/session.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/node/model-files.ts';
import { inject } from '../../src/adapter/inject.ts';
import { buildGradModel, type GradModel } from '../../src/train/grad-model.ts';
import { feedsFromSafe } from '../../src/runtime/tensors.ts';
import { runGradModel } from '../../src/train/grad-run.ts';
import type { Task } from '../../src/train/loss.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { FIXTURE_NAMES, loadFixture, relError, type Fixture } from '../helpers/fixtures.ts';
import type { SafeTensor } from '../../src/formats/safetensors.ts';

const TASK_OF: Record<string, Task> = { sequence_classification: 'seq-cls', causal_lm: 'causal-lm' };

function peftConfig(f: Fixture) {
  const c = f.config.tweaker.peft_equivalent_config;
  return { r: c.r, depth: c.depth, act: c.act_fn, scaling: c.scaling, targets: c.target_modules };
}

/** Rows `rows` and the first `seq` positions of a [B, S] / [B] int64 batch. */
function sliceBatch(batch: Map<string, SafeTensor>, rows: number[], seq: number): Feeds {
  const out: Feeds = {};
  for (const [k, t] of batch) {
    const data = t.data as BigInt64Array;
    if (t.shape.length === 1) out[k] = new ort.Tensor('int64', BigInt64Array.from(rows, (r) => data[r]!), [rows.length]);
    else {
      const S = t.shape[1]!;
      const v = new BigInt64Array(rows.length * seq);
      rows.forEach((r, i) => {
        for (let j = 0; j < seq; j++) v[i * seq + j] = data[r * S + j]!;
      });
      out[k] = new ort.Tensor('int64', v, [rows.length, seq]);
    }
  }
  return out;
}

/** Right-pads every [B, S] tensor with `extra` positions: ids/types 0, mask 0, labels −100. */
function padBatch(batch: Map<string, SafeTensor>, extra: number): Feeds {
  const out: Feeds = {};
  for (const [k, t] of batch) {
    const data = t.data as BigInt64Array;
    if (t.shape.length === 1) {
      out[k] = new ort.Tensor('int64', data, t.shape);
      continue;
    }
    const [B, S] = t.shape as [number, number];
    const fill = k === 'labels' ? -100n : 0n;
    const v = new BigInt64Array(B * (S + extra)).fill(fill);
    for (let i = 0; i < B; i++) for (let j = 0; j < S; j++) v[i * (S + extra) + j] = data[i * S + j]!;
    out[k] = new ort.Tensor('int64', v, [B, S + extra]);
  }
  return out;
}

for (const name of FIXTURE_NAMES) {
  describe(`gradient model on ${name}`, () => {
    let f: Fixture;
    let gm: GradModel;
    beforeAll(async () => {
      f = loadFixture(name);
      const { model } = inject(loadModel(f.modelPath), { ...peftConfig(f), init: f.peftTensors('tweaker') });
      gm = await buildGradModel(nodeRuntime, model, { task: TASK_OF[f.config.task.type]! });
    }, 60_000);

    it('matches the PyTorch loss and every tweaker gradient', async () => {
      const r = await runGradModel(nodeRuntime, gm, feedsFromSafe(f.batch()));
      const expected = f.expected();
      const wantLoss = (expected.get('loss')!.data as Float32Array)[0]!;
      const lossErr = Math.abs(r.loss - wantLoss) / Math.abs(wantLoss);
      const errs: Record<string, number> = {};
      let n = 0;
      for (const [key, t] of expected) {
        if (!key.endsWith('::grad')) continue;
        const peft = f.toPeftKey(key.slice(0, -'::grad'.length));
        const got = r.grads.get(peft);
        expect(got, `gradient of ${peft}`).toBeDefined();
        expect(got!.dims).toEqual(t.shape);
        errs[peft] = relError(got!.data, t.data as Float32Array);
        n++;
      }
      console.log(`${name}: loss ${r.loss} (want ${wantLoss}, rel err ${lossErr.toExponential(2)}); max grad rel err ${Math.max(...Object.values(errs)).toExponential(2)} over ${n} tensors`);
      expect(n).toBe(gm.params.length);
      expect(lossErr).toBeLessThanOrEqual(1e-5);
      for (const [k, e] of Object.entries(errs)) expect(e, k).toBeLessThanOrEqual(1e-3);
    });

    it('runs the same graph at other batch and sequence sizes, with the same numbers', async () => {
      const batch = f.batch();
      const full = await runGradModel(nodeRuntime, gm, feedsFromSafe(batch));
      const S = batch.get('input_ids')!.shape[1]!;
      const causal = f.config.task.type === 'causal_lm';
      // Loss weight of a batch: examples (classification) or counted shifted tokens (LM).
      const weight = (feeds: Feeds) => {
        const l = feeds.labels!;
        if (!causal) return l.dims[0]!;
        const d = l.data as BigInt64Array;
        const T = l.dims[1]!;
        let n = 0;
        for (let i = 0; i < d.length; i++) if (i % T > 0 && d[i] !== -100n) n++;
        return n;
      };
      // 1. Split the batch (dynamic batch size): the weighted mean of the parts is the whole.
      const parts = [sliceBatch(batch, [0, 1], S), sliceBatch(batch, [2], S)];
      const runs = await Promise.all(parts.map((p) => runGradModel(nodeRuntime, gm, p)));
      const w = parts.map(weight);
      const total = w[0]! + w[1]!;
      const combinedLoss = (runs[0]!.loss * w[0]! + runs[1]!.loss * w[1]!) / total;
      expect(Math.abs(combinedLoss - full.loss) / full.loss).toBeLessThan(1e-5);
      for (const p of gm.params) {
        const a = runs[0]!.grads.get(p)!.data;
        const b = runs[1]!.grads.get(p)!.data;
        const combined = a.map((v, i) => (v * w[0]! + b[i]! * w[1]!) / total);
        expect(relError(combined, full.grads.get(p)!.data), p).toBeLessThan(1e-4);
      }
      // 2. Pad the sequence with 3 masked positions (dynamic sequence length): nothing changes.
      const padded = padBatch(batch, 3);
      const r = await runGradModel(nodeRuntime, gm, padded);
      if (causal) expect(r.prediction.dims[1]).toBe(S + 3);
      expect(Math.abs(r.loss - full.loss) / full.loss).toBeLessThan(1e-5);
      for (const p of gm.params) expect(relError(r.grads.get(p)!.data, full.grads.get(p)!.data), p).toBeLessThan(1e-4);
    });

    it('probing with the real batch (plus a synthetic run) gives the same graph behaviour', async () => {
      if (name !== 'gpt2_tiny') return;
      const { model } = inject(loadModel(f.modelPath), { ...peftConfig(f), init: f.peftTensors('tweaker') });
      const batch = { ...feedsFromSafe(f.batch()), unrelated_field: new ort.Tensor('int64', new BigInt64Array(3), [3]) };
      const gm2 = await buildGradModel(nodeRuntime, model, { task: TASK_OF[f.config.task.type]!, batch });
      expect(gm2.shapes.get('logits')!.shape).toEqual([null, null, 64]);
      const [a, b] = [await runGradModel(nodeRuntime, gm, feedsFromSafe(f.batch())), await runGradModel(nodeRuntime, gm2, feedsFromSafe(f.batch()))];
      expect(b.loss).toBe(a.loss);
    });

    it('computes no gradient of a frozen weight', () => {
      // Every MatMul/Gemm on the gradient path gets exactly one backward GEMM per input that needs
      // a gradient: the input gradient for a frozen layer, plus the weight gradient only where the
      // weight is a tweaker value (W = W0 + ΔW, or A/B inside the tweaker).
      const active = new Set([...gm.params, ...gm.pathNodes.flatMap((n) => n.output)]);
      const frozen = new Set(gm.model.proto.graph!.initializer.map((t) => t.name));
      let frozenLayers = 0;
      let total = 0;
      for (const n of gm.pathNodes) {
        if (n.opType !== 'MatMul' && n.opType !== 'Gemm') continue;
        const emitted = gm.backwardNodes.filter((b) => (b.opType === 'MatMul' || b.opType === 'Gemm') && b.name.startsWith(`/grad${n.name}/`));
        const needed = n.input.slice(0, 2).filter((i) => active.has(i)).length;
        expect(emitted.length, `backward GEMMs of ${n.name}`).toBe(needed);
        if (frozen.has(n.input[1]!)) {
          frozenLayers++;
          expect(needed, `${n.name} has a frozen weight`).toBe(1);
        }
        total += emitted.length;
      }
      // the fixtures' frozen classifier/LM-head/attention-output layers sit on the path
      expect(frozenLayers).toBeGreaterThan(0);
      console.log(`${name}: ${total} backward MatMul/Gemm for ${gm.pathNodes.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm').length} forward ones; ${frozenLayers} frozen layers get input gradients only`);
    });
  });
}
