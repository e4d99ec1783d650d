import type { Feeds } from '../../src/runtime/session.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { inject } from '../../src/adapter/inject.ts';
import { merge } from '../../src/adapter/merge.ts';
import { mergeWithRuntime } from '../../src/runtime/merge-ort.ts';
import { FIXTURE_NAMES, loadFixture, maxAbsDiff, relError, type Fixture } from '../helpers/fixtures.ts';
import type { SafeTensor } from '../../src/formats/safetensors.ts';

/** Runs a model on the fixture batch and returns its first output. */
async function run(model: OnnxModel, batch: Map<string, SafeTensor>): Promise<Float32Array> {
  const { session } = await createSession(encodeModel(model.proto), { ep: 'cpu' });
  try {
    const feeds: Feeds = {};
    for (const name of session.inputNames) {
      const t = batch.get(name);
      if (!t) throw new Error(`batch has no '${name}'`);
      feeds[name] = new ort.Tensor('int64', t.data as BigInt64Array, t.shape);
    }
    const out = await session.run(feeds);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function peftConfig(f: Fixture) {
  const c = f.config.tweaker.peft_equivalent_config;
  return { r: c.r, depth: c.depth, act: c.act_fn, scaling: c.scaling, targets: c.target_modules };
}

for (const name of FIXTURE_NAMES) {
  describe(`PEANuT on ${name}`, () => {
    let f: Fixture;
    let original: OnnxModel;
    let batch: Map<string, SafeTensor>;
    let base: Float32Array;
    beforeAll(async () => {
      f = loadFixture(name);
      original = loadModel(f.modelPath);
      batch = f.batch();
      base = await run(original, batch);
    }, 30_000);
    afterAll(() => undefined);

    it('selects exactly the fixture targets', () => {
      const { targets } = inject(original, peftConfig(f));
      expect(targets.map((t) => t.node)).toEqual(f.config.tweaker.targets.map((t) => t.node));
      expect(targets.map((t) => t.module)).toEqual(f.config.tweaker.targets.map((t) => t.torch_module));
      expect(targets.map((t) => t.weight)).toEqual(f.config.tweaker.targets.map((t) => t.weight_initializer));
    });

    it('with default init, the adapted model computes the original outputs', async () => {
      const { model, state } = inject(original, { ...peftConfig(f), seed: 3 });
      // B = 0 and A ≠ 0: the tweaker is live but starts as an exact no-op.
      const a = [...state].find(([k]) => k.endsWith('peanut_A.weight'))![1];
      expect(a.some((v) => v !== 0)).toBe(true);
      const got = await run(model, batch);
      expect(maxAbsDiff(got, base)).toBeLessThanOrEqual(1e-6);
    }, 30_000);

    it('with the fixture tweaker, matches the PyTorch oracle; merge matches too', async () => {
      const expected = f.expected();
      const { model } = inject(original, { ...peftConfig(f), init: f.peftTensors('tweaker') });
      const adapted = await run(model, batch);
      const want = expected.get('adapted_logits')!.data as Float32Array;
      expect(relError(adapted, want)).toBeLessThanOrEqual(1e-4);
      // The tweaker moved the logits well beyond the tolerance, so it was applied.
      expect(maxAbsDiff(adapted, base)).toBeGreaterThan(1e-3 * Math.max(...want.map(Math.abs)) * 0.1);

      const merged = merge(model);
      const mg = graphOf(merged);
      const viaOrt = graphOf(await mergeWithRuntime(nodeRuntime, model));
      for (const t of f.config.tweaker.targets) {
        const wantW = expected.get(`${t.weight_initializer}::merged`)!.data as Float32Array;
        for (const g of [mg, viaOrt]) {
          const init = g.initializer.find((x) => x.name === t.weight_initializer)!;
          expect(relError(tensorToFloat32(init, merged.baseDir), wantW)).toBeLessThanOrEqual(1e-6);
        }
      }
      expect(viaOrt.node).toEqual(mg.node);
      const mergedOut = await run(merged, batch);
      expect(maxAbsDiff(mergedOut, adapted)).toBeLessThanOrEqual(1e-5);

      // The merged graph is the original, node for node.
      const og = graphOf(original);
      const sig = (g: typeof og) => g.node.map((n) => [n.name, n.opType, n.domain, [...n.input], [...n.output], n.attribute.length]);
      expect(sig(mg)).toEqual(sig(og));
      expect(mg.initializer.map((t) => t.name)).toEqual(og.initializer.map((t) => t.name));
      expect(mg.input.map((v) => v.name)).toEqual(og.input.map((v) => v.name));
      expect(mg.output.map((v) => v.name)).toEqual(og.output.map((v) => v.name));
      expect(merged.proto.metadataProps).toEqual(original.proto.metadataProps);
      // Same encoding size: no field was added or dropped anywhere in the model.
      expect(encodeModel(merged.proto).byteLength).toBe(encodeModel(original.proto).byteLength);
      // Only the target weights changed.
      const targets = new Set(f.config.tweaker.targets.map((t) => t.weight_initializer));
      og.initializer.forEach((t, i) => {
        if (!targets.has(t.name)) expect(mg.initializer[i]).toBe(t);
      });
    }, 60_000);
  });
}
