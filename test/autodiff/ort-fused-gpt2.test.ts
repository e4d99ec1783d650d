/**
 * Gradients through a real ONNX Runtime-optimized graph: hf-internal-testing/tiny-random-gpt2
 * after ORT's transformer optimizer (test/fixtures/real-exports/, see the fixtures README), whose blocks are
 * com.microsoft Attention → MatMul → SkipLayerNormalization → MatMul → FastGelu → MatMul →
 * SkipLayerNormalization, each SkipLayerNormalization handing its input_skip_bias_sum output to
 * the next one as the residual. The parameters are weights of the last block after its Attention
 * (Attention has no rule), so every path runs through SkipLayerNormalization (outputs 0 and 3),
 * FastGelu and the final SkipLayerNormalization. The vector-Jacobian product of the logits with
 * fixed weights R is checked against central differences through onnxruntime (float32 model:
 * step 1e-2 relative to max(1, |w|), tolerance 2e-3 absolute + 2e-3 · max |numeric|), at two
 * batch/sequence sizes with one gradient graph.
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { type Feeds } from '../../src/runtime/tensors.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { editableCopy, encodeModel } from '../../src/onnx/model.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { tensorDims, tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { randomValues } from '../helpers/gradcheck.ts';

const MODEL = join(FIXTURES_DIR, 'real-exports', 'tiny-random-gpt2-fp32-past.onnx');
const PARAMS = ['transformer.h.4.attn.c_proj.weight', 'transformer.h.4.mlp.c_fc.weight', 'transformer.h.4.mlp.c_proj.weight'];
const VOCAB = 1000;

function feedsFor(batch: number, seq: number, past: number, seed: number): Feeds {
  const ids = randomValues(batch * seq, seed, 0, VOCAB - 1).map(Math.floor);
  const feeds: Feeds = {
    input_ids: new ort.Tensor('int32', Int32Array.from(ids), [batch, seq]),
    position_ids: new ort.Tensor('int32', Int32Array.from({ length: batch * seq }, (_, i) => past + (i % seq)), [batch, seq]),
    attention_mask: new ort.Tensor('int32', new Int32Array(batch * (past + seq)).fill(1), [batch, past + seq]),
  };
  for (let l = 0; l < 5; l++) feeds[`past_${l}`] = new ort.Tensor('float32', Float32Array.from(randomValues(2 * batch * 4 * past * 8, seed + l + 1)), [2, batch, 4, past, 8]);
  return feeds;
}

describe('an ORT-fused GPT-2 graph (SkipLayerNormalization chains, FastGelu)', () => {
  it('gradients of the last block match finite differences, at two sizes', async () => {
    const proto = editableCopy(loadModel(MODEL).proto);
    const g = proto.graph!;
    const graph = new Graph(g);
    const values = new Map<string, { data: Float32Array; dims: number[] }>();
    for (const p of PARAMS) {
      const t = graph.removeInitializer(p)!;
      values.set(p, { data: Float32Array.from(tensorToFloat32(t, '.')), dims: tensorDims(t) });
      g.input.push(makeValueInfo(p, DT.FLOAT, tensorDims(t)));
    }
    g.output = [makeValueInfo('logits')];
    const runs = [feedsFor(2, 3, 1, 1), feedsFor(3, 5, 2, 7)];
    const withParams = (f: Feeds) => ({ ...f, ...Object.fromEntries(PARAMS.map((p) => [p, new ort.Tensor('float32', values.get(p)!.data, values.get(p)!.dims)])) });
    const fwd = await ort.InferenceSession.create(encodeModel(proto));
    const logitsOf = async (f: Feeds) => (await fwd.run(withParams(f) as Record<string, ort.Tensor>))['logits'] as ort.Tensor;
    const weights = await Promise.all(runs.map(async (f, i) => {
      const y = await logitsOf(f);
      return new ort.Tensor('float32', Float32Array.from(randomValues(y.data.length, 100 + i)), y.dims);
    }));

    g.input.push(makeValueInfo('R', DT.FLOAT, ['b', 's', VOCAB]));
    const batches = runs.map((f, i) => ({ ...withParams(f), R: weights[i]! }));
    const shapes = await probeShapes(nodeRuntime, { proto, baseDir: '.' }, { batches });
    const { grads, pathNodes } = buildGradients({ graph, opset: 11, seeds: new Map([['logits', 'R']]), params: PARAMS, shapes });
    expect(new Set(pathNodes.map((n) => n.opType))).toEqual(new Set(['MatMul', 'SkipLayerNormalization', 'FastGelu']));
    g.output = PARAMS.map((p) => makeValueInfo(grads.get(p)!));
    const bwd = await ort.InferenceSession.create(encodeModel(proto));
    try {
      for (const [ri, f] of runs.entries()) {
        const analytic = await bwd.run(batches[ri]!);
        const loss = async () => {
          const y = (await logitsOf(f)).data as Float32Array;
          const r = weights[ri]!.data as Float32Array;
          let s = 0;
          for (let i = 0; i < y.length; i++) s += y[i]! * r[i]!;
          return s;
        };
        for (const p of PARAMS) {
          const w = values.get(p)!.data;
          const a = analytic[grads.get(p)!]!.data as Float32Array;
          let maxErr = 0;
          let maxNumeric = 0;
          for (let e = 0; e < w.length; e += Math.floor(w.length / 12)) {
            const orig = w[e]!;
            const h = 1e-2 * Math.max(1, Math.abs(orig));
            w[e] = orig + h;
            const lp = await loss();
            w[e] = orig - h;
            const lm = await loss();
            w[e] = orig;
            const numeric = (lp - lm) / (Math.fround(orig + h) - Math.fround(orig - h));
            maxErr = Math.max(maxErr, Math.abs(numeric - a[e]!));
            maxNumeric = Math.max(maxNumeric, Math.abs(numeric));
          }
          expect(maxNumeric, `${p}: the check must see a gradient`).toBeGreaterThan(1e-3);
          expect(maxErr, `${p}, run ${ri}`).toBeLessThanOrEqual(2e-3 + 2e-3 * maxNumeric);
        }
      }
    } finally {
      await fwd.release();
      await bwd.release();
    }
  });
});
