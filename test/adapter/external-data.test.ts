import type { Feeds } from '../../src/runtime/session.ts';
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, graphOf } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { isExternal, tensorBytes } from '../../src/onnx/tensor.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { inject } from '../../src/adapter/inject.ts';
import { merge } from '../../src/adapter/merge.ts';
import { loadFixture, maxAbsDiff } from '../helpers/fixtures.ts';

async function runPath(path: string, batch: ReturnType<ReturnType<typeof loadFixture>['batch']>): Promise<Float32Array> {
  const { session } = await createSession(path, { ep: 'cpu' });
  try {
    const feeds: Feeds = {};
    for (const name of session.inputNames) feeds[name] = new ort.Tensor('int64', batch.get(name)!.data as BigInt64Array, batch.get(name)!.shape);
    const out = await session.run(feeds);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('external data', () => {
  it('round-trips a model with external data, and inject -> merge keeps the layout', async () => {
    const f = loadFixture('bert_tiny_opset14');
    const dir = mkdtempSync(join(tmpdir(), 'peanut-ext-'));
    const original = loadModel(f.modelPath);
    const extPath = join(dir, 'model.onnx');
    saveModel(original, extPath, { externalData: true });
    expect(existsSync(`${extPath}_data`)).toBe(true);
    // saving does not change the in-memory model
    expect(Buffer.compare(Buffer.from(encodeModel(original.proto)), readFileSync(f.modelPath))).toBe(0);

    // reload: same tensors, large ones external
    const ext = loadModel(extPath);
    const og = graphOf(original);
    const eg = graphOf(ext);
    expect(eg.initializer.map((t) => t.name)).toEqual(og.initializer.map((t) => t.name));
    eg.initializer.forEach((t, i) => {
      const o = og.initializer[i]!;
      expect(Buffer.compare(Buffer.from(tensorBytes(t, ext.baseDir)), Buffer.from(tensorBytes(o, original.baseDir)))).toBe(0);
      expect(isExternal(t)).toBe(tensorBytes(o, original.baseDir).byteLength >= 1024);
    });
    expect(statSync(extPath).size).toBeLessThan(statSync(f.modelPath).size / 2);

    // inject -> save: still external, runs from its path in ORT, B = 0 is a no-op
    const batch = f.batch();
    const base = await runPath(extPath, batch);
    const c = f.config.tweaker.peft_equivalent_config;
    const { model: adapted } = inject(ext, { r: c.r, depth: c.depth, act: c.act_fn, scaling: c.scaling, targets: c.target_modules, init: f.peftTensors('tweaker') });
    const adaptedPath = join(dir, 'adapted.onnx');
    saveModel(adapted, adaptedPath);
    expect(existsSync(`${adaptedPath}_data`)).toBe(true);
    const adaptedOut = await runPath(adaptedPath, batch);
    expect(maxAbsDiff(adaptedOut, base)).toBeGreaterThan(1e-5);

    // merge from the reloaded adapted model -> external data again, same names, same outputs
    const reloaded = loadModel(adaptedPath);
    const merged = merge(reloaded);
    const mergedPath = join(dir, 'merged.onnx');
    saveModel(merged, mergedPath);
    expect(existsSync(`${mergedPath}_data`)).toBe(true);
    const mg = graphOf(loadModel(mergedPath));
    expect(mg.initializer.map((t) => t.name)).toEqual(og.initializer.map((t) => t.name));
    expect(mg.initializer.find((t) => t.name === 'onnx::MatMul_336')!.dataLocation).toBe(1); // EXTERNAL
    expect(statSync(`${mergedPath}_data`).size).toBe(statSync(`${extPath}_data`).size);
    const mergedOut = await runPath(mergedPath, batch);
    expect(maxAbsDiff(mergedOut, adaptedOut)).toBeLessThanOrEqual(1e-5);
  }, 60_000);
});
