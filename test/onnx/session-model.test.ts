/**
 * sessionModel (src/node/session-model.ts): a lazily loaded model handed to ONNX Runtime with its
 * large tensors as external-data references into its own file. Same outputs as the fully encoded
 * model, a small encoding, files outside the model's folder left inline, a changed file refused.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { Feeds } from '../../src/runtime/session.ts';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { createSession } from '../../src/node/onnxruntime.ts';
import { sessionModel } from '../../src/node/session-model.ts';
import { i64Tensor } from '../../src/runtime/tensors.ts';
import { deferredLength, isDeferred } from '../../src/onnx/tensor.ts';
import { buildBert } from '../../tools/lib/transformers.ts';
import { tempDir } from '../helpers/cli.ts';

function writeBert(dir: string): string {
  const m = buildBert({ vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 256, maxPositions: 64, numLabels: 2, seed: 3, biasStd: 0.02 });
  const path = join(dir, 'bert.onnx');
  saveModel(m, path);
  return path;
}

const feeds: Feeds = {
  input_ids: i64Tensor(Array.from({ length: 10 }, (_, i) => (i * 37 + 5) % 300), [2, 5]),
  attention_mask: i64Tensor(Array<number>(10).fill(1), [2, 5]),
  token_type_ids: i64Tensor(Array<number>(10).fill(0), [2, 5]),
};

async function logits(model: Uint8Array, externalData?: Array<{ path: string; data: string }>): Promise<Float32Array> {
  const { session } = await createSession(model, { threads: 1, ...(externalData?.length ? { externalData } : {}) });
  try {
    const out = await session.run(feeds);
    return Float32Array.from(out[session.outputNames[0]!]!.data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('sessionModel', () => {
  it('references the large tensors in the model file: small encoding, the same logits', async () => {
    const path = writeBert(tempDir('peanut-session-model-'));
    const lazy = loadModel(path, { lazyThreshold: 0 });
    expect(graphOf(lazy).initializer.filter(isDeferred).length).toBeGreaterThan(4);
    const full = encodeModel(lazy.proto);
    const s = sessionModel(lazy);
    expect(s.externalData).toEqual([{ path: 'bert.onnx', data: path }]);
    // Every deferred tensor's bytes left out (a reference costs a few dozen bytes).
    const deferred = graphOf(lazy).initializer.filter(isDeferred);
    const leftOut = deferred.reduce((n, t) => n + deferredLength(t)!, 0);
    expect(s.model.byteLength).toBeLessThan(full.byteLength - leftOut + 100 * deferred.length);
    expect(Array.from(await logits(s.model, s.externalData))).toEqual(Array.from(await logits(full)));
    // The caller's model is unchanged (its tensors are still read lazily from the file).
    expect(graphOf(lazy).initializer.filter(isDeferred).length).toBeGreaterThan(4);
  });

  it('leaves a tensor inline when its file is outside the model folder', async () => {
    const path = writeBert(tempDir('peanut-session-model-'));
    const lazy = loadModel(path, { lazyThreshold: 0 });
    const elsewhere: OnnxModel = { proto: lazy.proto, baseDir: tempDir('peanut-session-other-') };
    const s = sessionModel(elsewhere);
    expect(s.externalData).toEqual([]);
    expect(s.model.byteLength).toBe(encodeModel(lazy.proto).byteLength);
  });

  it('EXPECTED FAILURE - a model file changed since it was loaded is refused (E_SOURCE_CHANGED)', () => {
    const dir = tempDir('peanut-session-model-');
    const path = writeBert(dir);
    const lazy = loadModel(path, { lazyThreshold: 0 });
    copyFileSync(path, join(dir, 'copy.onnx'));
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(() => sessionModel(lazy)).toThrow(/changed since it was loaded/);
  });
});
