import type { Feeds } from '../../src/runtime/session.ts';
import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { deferredSource, isDeferred, isExternal, setTensorBytes, tensorBytes } from '../../src/onnx/tensor.ts';
import { inject } from '../../src/adapter/inject.ts';
import { merge } from '../../src/adapter/merge.ts';
import { createSession } from '../../src/node/onnxruntime.ts';
import { i64Tensor } from '../../src/runtime/tensors.ts';
import { buildBert } from '../../tools/lib/transformers.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { tempDir } from '../helpers/cli.ts';

const LAZY = { lazyThreshold: 0 };
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** A small BERT whose embeddings and FFN weights are over the 64 KiB deferral size. */
function writeGenerated(dir: string): string {
  const m = buildBert({ vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 256, maxPositions: 64, numLabels: 2, seed: 3, biasStd: 0.02 });
  const path = join(dir, 'bert.onnx');
  saveModel(m, path);
  return path;
}

function bytesByName(m: OnnxModel): Map<string, Uint8Array> {
  return new Map(graphOf(m).initializer.map((t) => [t.name, tensorBytes(t, m.baseDir)]));
}

async function logits(m: OnnxModel): Promise<Float32Array> {
  const { session } = await createSession(encodeModel(m.proto), { threads: 1 });
  try {
    const ids = Array.from({ length: 10 }, (_, i) => (i * 37 + 5) % 300);
    const ones = Array<number>(10).fill(1);
    const feeds: Feeds = { input_ids: i64Tensor(ids, [2, 5]), attention_mask: i64Tensor(ones, [2, 5]), token_type_ids: i64Tensor(ones.map(() => 0), [2, 5]) };
    const out = await session.run(Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k))));
    return Float32Array.from(out[session.outputNames[0]!]!.data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('lazy loading of large inline models', () => {
  it('reads only a skeleton: large tensors read their bytes from the file, equal to an eager load', () => {
    const path = writeGenerated(tempDir('peanut-lazy-'));
    const eager = loadModel(path);
    const lazy = loadModel(path, LAZY);
    expect(graphOf(eager).initializer.some(isDeferred)).toBe(false);
    const deferred = graphOf(lazy).initializer.filter(isDeferred);
    expect(deferred.length).toBeGreaterThan(4);
    for (const t of graphOf(lazy).initializer) {
      // the default deferral size: 64 KiB
      const size = tensorBytes(t, lazy.baseDir).byteLength;
      expect(isDeferred(t), t.name).toBe(size >= 64 * 1024);
      if (isDeferred(t)) expect(t.rawData.byteLength).toBe(0);
    }
    const e = bytesByName(eager);
    for (const [name, bytes] of bytesByName(lazy)) expect(same(bytes, e.get(name)!), name).toBe(true);
    // the source range is the raw_data payload in the file
    const file = readFileSync(path);
    const src = deferredSource(deferred[0]!)!;
    expect(same(file.subarray(src.offset, src.offset + src.length), e.get(deferred[0]!.name)!)).toBe(true);
  });

  it('round-trips byte for byte through encodeModel and saveModel (inline), without changing the model', () => {
    const dir = tempDir('peanut-lazy-');
    const path = writeGenerated(dir);
    const lazy = loadModel(path, LAZY);
    expect(same(encodeModel(lazy.proto), readFileSync(path))).toBe(true);
    const out = join(dir, 'copy.onnx');
    saveModel(lazy, out);
    expect(same(readFileSync(out), readFileSync(path))).toBe(true);
    expect(graphOf(lazy).initializer.filter(isDeferred).every((t) => t.rawData.byteLength === 0)).toBe(true);
    // a tensor given bytes of its own no longer reads the file
    const t = graphOf(lazy).initializer.find(isDeferred)!;
    const mine = new Uint8Array(tensorBytes(t, lazy.baseDir).byteLength).fill(7);
    t.rawData = mine;
    expect(isDeferred(t)).toBe(false);
    expect(tensorBytes(t, lazy.baseDir)).toBe(mine);
    saveModel(lazy, out);
    expect(same(tensorBytes(graphOf(loadModel(out)).initializer.find((x) => x.name === t.name)!, dir), mine)).toBe(true);
  });

  it('saves a lazily loaded model with external data and back: same tensors, same bytes', () => {
    const dir = tempDir('peanut-lazy-');
    const path = writeGenerated(dir);
    const lazy = loadModel(path, LAZY);
    const ext = join(dir, 'ext.onnx');
    saveModel(lazy, ext, { externalData: true });
    const reloaded = loadModel(ext, LAZY);
    // external tensors are never deferred; the layout survives another lazy round trip
    expect(graphOf(reloaded).initializer.some(isExternal)).toBe(true);
    expect(graphOf(reloaded).initializer.some(isDeferred)).toBe(false);
    // (same file name in another directory: the data file's name is written in the model)
    const again = join(tempDir('peanut-lazy-'), 'ext.onnx');
    saveModel(reloaded, again);
    expect(same(readFileSync(again), readFileSync(ext))).toBe(true);
    expect(same(readFileSync(`${again}_data`), readFileSync(`${ext}_data`))).toBe(true);
    // and back inline: the same file as from an eager load, the same tensors as the original
    const inline = join(dir, 'inline.onnx');
    saveModel(reloaded, inline, { externalData: false });
    const inlineEager = join(dir, 'inline-eager.onnx');
    saveModel(loadModel(ext), inlineEager, { externalData: false });
    expect(same(readFileSync(inline), readFileSync(inlineEager))).toBe(true);
    const want = bytesByName(loadModel(path));
    for (const [name, bytes] of bytesByName(loadModel(inline, LAZY))) expect(same(bytes, want.get(name)!), name).toBe(true);
  });

  it('inject and merge of a lazily loaded model write the same files as of an eagerly loaded one', async () => {
    const dir = tempDir('peanut-lazy-');
    const path = writeGenerated(dir);
    const opts = { r: 4, targets: 'all-linear', seed: 5 };
    const write = (m: OnnxModel, name: string) => {
      const p = join(dir, name);
      saveModel(m, p);
      return p;
    };
    const adaptedEager = write(inject(loadModel(path), opts).model, 'adapted-eager.onnx');
    const adaptedLazy = write(inject(loadModel(path, LAZY), opts).model, 'adapted-lazy.onnx');
    expect(same(readFileSync(adaptedLazy), readFileSync(adaptedEager))).toBe(true);
    // B ≠ 0, so that merging changes the weights (every tensor of the lazy copy is deferred)
    const adapted = loadModel(adaptedLazy, { lazyThreshold: 0, deferBytes: 1 });
    const eagerAdapted = loadModel(adaptedLazy);
    for (const m of [adapted, eagerAdapted]) {
      for (const t of graphOf(m).initializer) {
        if (t.name.endsWith('peanut_B.weight')) setTensorBytes(t, new Uint8Array(new Float32Array(tensorBytes(t, m.baseDir).byteLength / 4).fill(0.01).buffer));
      }
    }
    expect(graphOf(adapted).initializer.filter((t) => t.name.endsWith('peanut_B.weight')).some(isDeferred)).toBe(false);
    const mergedLazy = write(merge(adapted, { stream: true }), 'merged-lazy.onnx');
    const mergedEager = write(merge(eagerAdapted), 'merged-eager.onnx');
    expect(same(readFileSync(mergedLazy), readFileSync(mergedEager))).toBe(true);
    expect(same(readFileSync(mergedLazy), readFileSync(path))).toBe(false);
    // sessions built from a lazily loaded model see the real weights
    const [a, b] = [await logits(loadModel(mergedLazy, LAZY)), await logits(loadModel(mergedEager))];
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('a source file that changes or disappears after loading is refused, not read as other bytes', () => {
    const dir = tempDir('peanut-lazy-');
    const path = writeGenerated(dir);
    const lazy = loadModel(path, LAZY);
    const t = graphOf(lazy).initializer.find(isDeferred)!;
    expect(tensorBytes(t, lazy.baseDir).byteLength).toBeGreaterThan(0);
    // saving over the source works (the bytes are copied before the file is replaced) …
    saveModel(lazy, path);
    // … but the model now points at a replaced file
    expect(() => tensorBytes(t, lazy.baseDir)).toThrow(expect.objectContaining({ code: 'E_SOURCE_CHANGED' }));
    const again = loadModel(path, LAZY);
    const u = graphOf(again).initializer.find(isDeferred)!;
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(() => encodeModel(again.proto)).toThrow(expect.objectContaining({ code: 'E_SOURCE_CHANGED' }));
    const third = loadModel(path, LAZY);
    rmSync(path);
    expect(() => saveModel(third, join(dir, 'out.onnx'))).toThrow(expect.objectContaining({ code: 'E_FILE_NOT_FOUND' }));
    expect(existsSync(join(dir, 'out.onnx'))).toBe(false);
    expect(u.rawData.byteLength).toBe(0);
  });

  it('a model the scan cannot follow falls back to reading the file whole', () => {
    const dir = tempDir('peanut-lazy-');
    const f = loadFixture('gpt2_tiny');
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, Buffer.from([0x0b, 0x01, 0x02, 0x03, 0x04]));
    expect(() => loadModel(junk, LAZY)).toThrow(expect.objectContaining({ code: 'E_NOT_ONNX' }));
    const truncated = join(dir, 'truncated.onnx');
    writeFileSync(truncated, readFileSync(f.modelPath).subarray(0, 100_000));
    expect(() => loadModel(truncated, LAZY)).toThrow(expect.objectContaining({ code: 'E_NOT_ONNX' }));
    const copy = join(dir, 'copy.onnx');
    copyFileSync(f.modelPath, copy);
    expect(same(encodeModel(loadModel(copy, LAZY).proto), readFileSync(f.modelPath))).toBe(true);
  });
});
