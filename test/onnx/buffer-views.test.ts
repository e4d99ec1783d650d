/**
 * Typed-array views over tensor bytes that live inside a larger buffer. A model decoded from a
 * small Node Buffer (`Buffer.from`, or `readFileSync` of a file under 4 KiB) holds its raw_data as
 * views into Node's shared 8 KiB pool, at arbitrary (often unaligned) offsets; so do safetensors
 * bytes read the same way. A reader that builds `new XArray(bytes.buffer)`, or relies on
 * `Buffer#slice` copying, reads other bytes of the pool. Each reader is run on such a model, from
 * bytes and from a file (eager, and lazily from the file), and must give the values the model was
 * built with: tensor values of every element type, inject → merge, shape probing and the
 * gradient model (its rules read int64 shape constants), safetensors and example sets, and
 * host tensors that are views handed to ONNX Runtime.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { DataType as DT, floatToBf16Bits, floatToHalfBits } from '../../src/onnx/dtype.ts';
import { decodeModel, encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { floatTensor, int64Tensor, makeTensor, tensorBytes, tensorToFloat32, tensorToInts } from '../../src/onnx/tensor.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { inject } from '../../src/adapter/inject.ts';
import { merge } from '../../src/adapter/merge.ts';
import { buildGradModel } from '../../src/train/grad-model.ts';
import { runGradModel } from '../../src/train/grad-run.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/formats/safetensors.ts';
import { exampleSetFromSafetensors } from '../../src/data/example-set.ts';

const W = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 4); // [4, 3]
const BIAS = Float32Array.from([0.25, -0.5, 1]);
const VALUES = [1.5, -2.25, 3, 0.125];

/** Tensors of every element type the readers convert, plus a small MatMul → Reshape → Add model. */
function buildModel(): OnnxModel {
  const g = create(GraphProtoSchema, { name: 'views' });
  g.input.push(makeValueInfo('x', DT.FLOAT, ['batch', 4]));
  g.output.push(makeValueInfo('logits', DT.FLOAT, ['batch', 3]));
  const graph = new Graph(g);
  graph.addInitializer(floatTensor('onnx::MatMul_1', [4, 3], W));
  graph.addInitializer(floatTensor('dense.bias', [3], BIAS));
  graph.addInitializer(int64Tensor('shape', [2], [-1, 3]));
  graph.addInitializer(floatTensor('f16', [4], VALUES, DT.FLOAT16));
  graph.addInitializer(floatTensor('bf16', [4], VALUES, DT.BFLOAT16));
  graph.addInitializer(floatTensor('f64', [4], VALUES, DT.DOUBLE));
  graph.addInitializer(makeTensor('i32', DT.INT32, [3], new Uint8Array(Int32Array.from([7, -8, 9]).buffer)));
  graph.addInitializer(makeTensor('i8', DT.INT8, [3], new Uint8Array(Int8Array.from([-1, 2, -3]).buffer)));
  graph.addInitializer(makeTensor('u8', DT.UINT8, [3], Uint8Array.from([200, 1, 2])));
  graph.addNode({ opType: 'MatMul', inputs: ['x', 'onnx::MatMul_1'], outputs: ['h'], name: '/dense/MatMul' });
  graph.addNode({ opType: 'Reshape', inputs: ['h', 'shape'], outputs: ['h2'], name: '/dense/Reshape' });
  graph.addNode({ opType: 'Add', inputs: ['h2', 'dense.bias'], outputs: ['logits'], name: '/dense/Add' });
  return { proto: create(ModelProtoSchema, { irVersion: 8n, graph: g, opsetImport: [{ domain: '', version: 17n }] }), baseDir: '.' };
}

/**
 * `bytes` copied into Node's shared pool behind other bytes (so never at offset 0), `shift` bytes
 * further on: the pool aligns each allocation to 8, so shifts 0…3 put every tensor at every
 * alignment a 4-byte reader can meet.
 */
function pooled(bytes: Uint8Array, shift = 0): Buffer {
  Buffer.from('shift the pool');
  const b = Buffer.from(Buffer.concat([Buffer.alloc(shift), Buffer.from(bytes)])).subarray(shift);
  expect(b.byteOffset).toBeGreaterThan(0);
  expect(b.buffer.byteLength).toBeGreaterThan(b.byteLength);
  return b;
}

/** The precondition of the test: some raw_data is a view inside a larger buffer. */
function expectViews(model: OnnxModel): void {
  const views = graphOf(model).initializer.filter((t) => t.rawData.byteLength > 0 && (t.rawData.byteOffset !== 0 || t.rawData.buffer.byteLength !== t.rawData.byteLength));
  expect(views.length).toBeGreaterThan(0);
}

function checkValues(model: OnnxModel): void {
  const t = (name: string) => graphOf(model).initializer.find((i) => i.name === name)!;
  expect(Array.from(tensorToFloat32(t('onnx::MatMul_1'), model.baseDir))).toEqual(Array.from(W));
  expect(Array.from(tensorToFloat32(t('dense.bias'), model.baseDir))).toEqual(Array.from(BIAS));
  for (const n of ['f16', 'bf16', 'f64']) expect(Array.from(tensorToFloat32(t(n), model.baseDir)), n).toEqual(VALUES);
  expect(tensorToInts(t('shape'), model.baseDir)).toEqual([-1, 3]);
  expect(tensorToInts(t('i32'), model.baseDir)).toEqual([7, -8, 9]);
  expect(tensorToInts(t('i8'), model.baseDir)).toEqual([-1, 2, -3]);
  expect(tensorToInts(t('u8'), model.baseDir)).toEqual([200, 1, 2]);
  const half = new Uint16Array(Uint8Array.from(tensorBytes(t('f16'), model.baseDir)).buffer);
  expect(Array.from(half)).toEqual(VALUES.map((v) => floatToHalfBits(v)));
  const bf = new Uint16Array(Uint8Array.from(tensorBytes(t('bf16'), model.baseDir)).buffer);
  expect(Array.from(bf)).toEqual(VALUES.map((v) => floatToBf16Bits(v)));
}

/** inject → merge, and the gradient model (probe + rules reading the int64 shape constant). */
async function checkPipeline(model: OnnxModel, reference: { merged: Float32Array; loss: number; grads: Map<string, Float32Array> }): Promise<void> {
  const adapted = inject(model, { targets: 'dense', r: 2, seed: 5 });
  const merged = merge(adapted.model);
  const w = graphOf(merged).initializer.find((i) => i.name === 'onnx::MatMul_1')!;
  expect(Array.from(tensorToFloat32(w, merged.baseDir))).toEqual(Array.from(reference.merged));
  const { loss, grads } = await gradients(adapted.model);
  expect(loss).toBe(reference.loss);
  for (const [k, g] of grads) expect(Array.from(g), k).toEqual(Array.from(reference.grads.get(k)!));
}

async function gradients(adapted: OnnxModel): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const gm = await buildGradModel(nodeRuntime, adapted, { task: 'regression' });
  const x = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i));
  // Feeds that are themselves views at an offset into a larger buffer.
  const big = new Float32Array(32);
  big.set(x, 5);
  const labels = new Float32Array(16);
  labels.set([0.5, -1, 2, 1, 0, -0.5], 3);
  const r = await runGradModel(nodeRuntime, gm, { x: { type: 'float32', data: big.subarray(5, 13), dims: [2, 4] }, labels: { type: 'float32', data: labels.subarray(3, 9), dims: [2, 3] } });
  return { loss: r.loss, grads: new Map([...r.grads].map(([k, v]) => [k, v.data])) };
}

describe('typed-array views over tensor bytes in a shared buffer', () => {
  it('a model decoded from a pooled Buffer, and from a small file (readFileSync pools it), eager and lazy', async () => {
    const built = buildModel();
    const adapted = inject(built, { targets: 'dense', r: 2, seed: 5 });
    const reference = {
      merged: tensorToFloat32(graphOf(merge(adapted.model)).initializer.find((i) => i.name === 'onnx::MatMul_1')!, '.'),
      ...(await gradients(adapted.model)),
    };
    const bytes = encodeModel(built.proto);
    expect(bytes.byteLength).toBeLessThan(4096); // small enough for Node's pool

    for (const shift of [0, 1, 2, 3]) {
      const fromBytes: OnnxModel = { proto: decodeModel(pooled(bytes, shift)), baseDir: '.' };
      expectViews(fromBytes);
      checkValues(fromBytes);
      await checkPipeline(fromBytes, reference);
    }

    const dir = tempDir('peanut-views-');
    const path = join(dir, 'views.onnx');
    writeFileSync(path, bytes);
    const fromFile = loadModel(path);
    expectViews(fromFile);
    checkValues(fromFile);
    await checkPipeline(fromFile, reference);

    const lazy = loadModel(path, { lazyThreshold: 0, deferBytes: 8 });
    checkValues(lazy);
    await checkPipeline(lazy, reference);
  }, 60_000);

  it('safetensors bytes and example sets read from a pooled Buffer', () => {
    const ids = BigInt64Array.from([1n, 5n, 7n, 2n, 9n, 3n]);
    const feats = Float32Array.from([0.5, -1.5, 2.5, -3.5]);
    const half = Uint16Array.from([0.5, -2].map((v) => floatToHalfBits(v)));
    const chunks = encodeSafetensors({ input_ids: { dtype: 'I64', shape: [2, 3], data: ids }, x: { dtype: 'F32', shape: [2, 2], data: feats }, h: { dtype: 'F16', shape: [2], data: half } });
    const bytes = pooled(Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))), 3);
    const { tensors } = parseSafetensors(bytes, 'pooled');
    expect(Array.from(tensors.get('input_ids')!.data as BigInt64Array)).toEqual(Array.from(ids));
    expect(Array.from(tensors.get('x')!.data as Float32Array)).toEqual(Array.from(feats));
    expect(Array.from(tensors.get('h')!.data as Uint16Array)).toEqual(Array.from(half));
    const set = exampleSetFromSafetensors(bytes, 'pooled');
    const b = set.batch([1], { inputs: [{ name: 'input_ids', elemType: DT.INT64 }, { name: 'x', elemType: DT.FLOAT }, { name: 'h', elemType: DT.FLOAT }], labels: [], task: 'regression' });
    expect(Array.from(b.get('input_ids')!.data as BigInt64Array, Number)).toEqual([2, 9, 3]);
    expect(Array.from(b.get('x')!.data as Float32Array)).toEqual([2.5, -3.5]);
    expect(Array.from(b.get('h')!.data as Float32Array)).toEqual([-2]);
  });
});
