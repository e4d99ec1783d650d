import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import { graphOf, encodeModel, type OnnxModel } from '../../src/onnx/model.ts';
import { inject, initParam, type InjectOptions } from '../../src/adapter/inject.ts';
import { merge } from '../../src/adapter/merge.ts';
import { mergeWithRuntime } from '../../src/runtime/merge-ort.ts';
import { tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { ACTIVATIONS } from '../../src/adapter/config.ts';
import { readAdapterMeta, ADAPTER_META_KEY } from '../../src/adapter/adapter-meta.ts';
import { readTweakerState, writeTweakerState } from '../../src/node/tweaker-files.ts';
import { resolveCheckpoint } from '../../src/node/run-dir.ts';
import { encodeSafetensors } from '../../src/formats/safetensors.ts';
import { PeanutError } from '../../src/errors.ts';
import { maxAbsDiff, relError } from '../helpers/fixtures.ts';
import { add, flat, matmul, peanutDeltaRef, randomMat, runModel, T, tinyModel, type Mat } from './tiny.ts';

const X = randomMat(2, 4, 11);
const Wg = randomMat(5, 4, 12, 0.5); // Gemm transB=1: [out, in]
const bias = randomMat(1, 5, 13, 0.1)[0]!;
const Wc = randomMat(4, 3, 14, 0.5); // Constant [in, out]
const Wm = randomMat(4, 6, 15, 0.5); // initializer [in, out]

/** Gemm(transB=1) + MatMul(Constant) + MatMul(initializer), each feeding an output. */
function threeLayers(weightType: number = DT.FLOAT): OnnxModel {
  return tinyModel([['X', [2, 4]]], ['Y1', 'Y2', 'Y3'], (_b, g) => {
    g.addInitializer(floatTensor('g.weight', [5, 4], flat(Wg), weightType));
    g.addInitializer(floatTensor('g.bias', [5], Float32Array.from(bias), weightType));
    g.addInitializer(floatTensor('onnx::MatMul_7', [4, 6], flat(Wm), weightType));
    g.addNode({ opType: 'Gemm', inputs: ['X', 'g.weight', 'g.bias'], outputs: ['Y1'], attrs: { transB: 1 }, name: '/g/Gemm' });
    g.addNode({ opType: 'Constant', inputs: [], outputs: ['wc'], attrs: { value: floatTensor('', [4, 3], flat(Wc), weightType) }, name: '/c/Constant' });
    g.addNode({ opType: 'MatMul', inputs: ['X', 'wc'], outputs: ['Y2'], name: '/c/MatMul' });
    g.addNode({ opType: 'MatMul', inputs: ['X', 'onnx::MatMul_7'], outputs: ['Y3'], name: '/m/MatMul' });
  });
}

/** Random values for every PEANuT key of a module (PEFT shapes). */
function peanutInit(module: string, out: number, r: number, depth: number, seed: number): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  m.set(`${module}.peanut_A.weight`, flat(randomMat(r, out, seed)));
  for (let i = 0; i < depth; i++) {
    m.set(`${module}.peanut_encoders.${i}.weight`, flat(randomMat(r, r, seed + 1 + i)));
    m.set(`${module}.peanut_decoders.${i}.weight`, flat(randomMat(r, r, seed + 50 + i)));
  }
  m.set(`${module}.peanut_B.weight`, flat(randomMat(out, r, seed + 99, 0.3)));
  return m;
}

const toMat = (a: Float32Array, rows: number, cols: number): Mat => Array.from({ length: rows }, (_, i) => Array.from(a.subarray(i * cols, (i + 1) * cols)));

function refDelta(init: Map<string, Float32Array>, module: string, w0: Mat, r: number, depth: number, act: string, scaling: number): Mat {
  const out = w0[0]!.length;
  const g = (k: string, rows: number, cols: number) => toMat(init.get(`${module}.${k}`)!, rows, cols);
  const enc = Array.from({ length: depth }, (_, i) => g(`peanut_encoders.${i}.weight`, r, r));
  const dec = Array.from({ length: depth }, (_, i) => g(`peanut_decoders.${i}.weight`, r, r));
  return peanutDeltaRef(w0, g('peanut_A.weight', r, out), enc, dec, g('peanut_B.weight', out, r), act, scaling);
}

const feeds = { X: [flat(X), [2, 4]] as [Float32Array, number[]] };

describe('injection numerics against a hand computation', () => {
  const r = 2;
  for (const act of ACTIVATIONS) {
    for (const depth of act === 'gelu' || act === 'relu' ? [0, 1, 2] : [1]) {
      it(`act=${act} depth=${depth}: Gemm transB=1, Constant weight, initializer weight`, async () => {
        const scaling = 0.7;
        const init = new Map([...peanutInit('g', 5, r, depth, 100), ...peanutInit('c', 3, r, depth, 200), ...peanutInit('m', 6, r, depth, 300)]);
        const original = threeLayers();
        const { model } = inject(original, { targets: 'g,c,m', r, depth, act, scaling, init });
        const got = await runModel(model, feeds);
        // Y1 = X · (Wgᵀ + ΔW) + b, in [in, out] semantics
        const y1 = matmul(X, add(T(Wg), refDelta(init, 'g', T(Wg), r, depth, act, scaling))).map((row) => row.map((v, j) => v + bias[j]!));
        const y2 = matmul(X, add(Wc, refDelta(init, 'c', Wc, r, depth, act, scaling)));
        const y3 = matmul(X, add(Wm, refDelta(init, 'm', Wm, r, depth, act, scaling)));
        expect(relError(got.Y1!, flat(y1))).toBeLessThan(1e-5);
        expect(relError(got.Y2!, flat(y2))).toBeLessThan(1e-5);
        expect(relError(got.Y3!, flat(y3))).toBeLessThan(1e-5);
        // the tweaker did change the outputs
        const base = await runModel(original, feeds);
        expect(maxAbsDiff(got.Y1!, base.Y1!)).toBeGreaterThan(1e-3);

        const merged = merge(model);
        const m = await runModel(merged, feeds);
        for (const k of ['Y1', 'Y2', 'Y3']) expect(maxAbsDiff(m[k]!, got[k]!)).toBeLessThanOrEqual(1e-5);
        // ΔW through ONNX Runtime (the adapted model's own nodes) agrees with the JS merge
        const viaOrt = await mergeWithRuntime(nodeRuntime, model);
        graphOf(viaOrt).initializer.forEach((t, i) => {
          const js = graphOf(merged).initializer[i]!;
          expect(relError(tensorToFloat32(t, '.'), tensorToFloat32(js, '.'))).toBeLessThanOrEqual(1e-6);
        });
        const cw = (mm: OnnxModel) => graphOf(mm).node.find((n) => n.opType === 'Constant')!.attribute[0]!.t!;
        expect(relError(tensorToFloat32(cw(viaOrt), '.'), tensorToFloat32(cw(merged), '.'))).toBeLessThanOrEqual(1e-6);
        // node for node the original; the Constant node carries the merged value
        const og = graphOf(original);
        const mg = graphOf(merged);
        expect(mg.node.map((n) => [n.name, n.opType, [...n.input], [...n.output]])).toEqual(og.node.map((n) => [n.name, n.opType, [...n.input], [...n.output]]));
        expect(mg.initializer.map((t) => t.name)).toEqual(og.initializer.map((t) => t.name));
        expect(encodeModel(merged.proto).byteLength).toBe(encodeModel(original.proto).byteLength);
      }, 30_000);
    }
  }

  it('weight read through a Transpose ([out, in] stored, as dynamo exports emit)', async () => {
    const Wt = randomMat(6, 4, 21, 0.5); // [out, in]
    const original = tinyModel([['X', [2, 4]]], ['Y'], (_b, g) => {
      g.addInitializer(floatTensor('lin.weight', [6, 4], flat(Wt)));
      g.addNode({ opType: 'Transpose', inputs: ['lin.weight'], outputs: ['wT'], attrs: { perm: [1, 0] }, name: '/lin/Transpose' });
      g.addNode({ opType: 'MatMul', inputs: ['X', 'wT'], outputs: ['Y'], name: '/lin/MatMul' });
    });
    const init = peanutInit('lin', 6, 2, 1, 400);
    const { model, meta } = inject(original, { targets: 'lin', r: 2, depth: 1, act: 'tanh', scaling: 1.5, init });
    expect(meta.targets[0]).toMatchObject({ weight: 'lin.weight', transposeNode: '/lin/Transpose', feedNode: '/lin/Transpose', feedInput: 0, layout: 'oi', in: 4, out: 6 });
    const got = await runModel(model, feeds);
    const want = matmul(X, add(T(Wt), refDelta(init, 'lin', T(Wt), 2, 1, 'tanh', 1.5)));
    expect(relError(got.Y!, flat(want))).toBeLessThan(1e-5);
    const merged = merge(model);
    expect(maxAbsDiff((await runModel(merged, feeds)).Y!, got.Y!)).toBeLessThanOrEqual(1e-5);
    expect(graphOf(merged).node.map((n) => [n.name, [...n.input]])).toEqual(graphOf(original).node.map((n) => [n.name, [...n.input]]));
  }, 30_000);

  it('unnamed nodes: fallback module paths, merge restores the right node', async () => {
    const Wa = randomMat(4, 3, 31, 0.5);
    const Wb = randomMat(4, 3, 32, 0.5);
    const original = tinyModel([['X', [2, 4]]], ['Ya', 'Yb', 'Yc'], (_b, g) => {
      g.addInitializer(floatTensor('onnx::MatMul_1', [4, 3], flat(Wa)));
      g.addInitializer(floatTensor('onnx::MatMul_2', [4, 3], flat(Wb)));
      g.addNode({ opType: 'MatMul', inputs: ['X', 'onnx::MatMul_1'], outputs: ['Ya'] });
      g.addNode({ opType: 'Relu', inputs: ['X'], outputs: ['Yc'] });
      g.addNode({ opType: 'MatMul', inputs: ['X', 'onnx::MatMul_2'], outputs: ['Yb'] });
      for (const n of g.proto.node) n.name = '';
    });
    const { model, meta } = inject(original, { targets: 'matmul_0,matmul_2', r: 2, init: new Map([...peanutInit('matmul_0', 3, 2, 0, 1), ...peanutInit('matmul_2', 3, 2, 0, 2)]) });
    expect(meta.targets.map((t) => [t.module, t.nodeOutput])).toEqual([
      ['matmul_0', 'Ya'],
      ['matmul_2', 'Yb'],
    ]);
    const got = await runModel(model, feeds);
    expect(relError(got.Ya!, flat(matmul(X, add(Wa, refDelta(new Map(peanutInit('matmul_0', 3, 2, 0, 1)), 'matmul_0', Wa, 2, 0, 'relu', 1)))))).toBeLessThan(1e-5);
    const merged = merge(model);
    const sig = (m: OnnxModel) => graphOf(m).node.map((n) => [n.name, n.opType, [...n.input], [...n.output]]);
    expect(sig(merged)).toEqual(sig(original));
    expect(maxAbsDiff((await runModel(merged, feeds)).Yb!, got.Yb!)).toBeLessThanOrEqual(1e-5);
  }, 30_000);

  it('fp16 weights: Cast at the boundary, default init is a no-op, merge casts back', async () => {
    const original = threeLayers(DT.FLOAT16);
    const { model } = inject(original, { targets: 'g,m', r: 2, depth: 1, act: 'gelu' });
    // weights (and bias) are fp16; run in fp16 is not needed: outputs compared as floats
    const nodeTypes = graphOf(model).node.map((n) => n.opType);
    expect(nodeTypes.filter((t) => t === 'Cast')).toHaveLength(4);
    const a = await runFp16(original);
    const b = await runFp16(model);
    expect(maxAbsDiff(a.Y1!, b.Y1!)).toBe(0);
    const init = new Map([...peanutInit('g', 5, 2, 1, 1), ...peanutInit('m', 6, 2, 1, 2)]);
    const live = inject(original, { targets: 'g,m', r: 2, depth: 1, act: 'gelu', init }).model;
    const adapted = await runFp16(live);
    const merged = await runFp16(merge(live));
    expect(relError(merged.Y3!, adapted.Y3!)).toBeLessThan(2e-3); // one fp16 ulp at most
    const viaOrt = await runFp16(await mergeWithRuntime(nodeRuntime, live));
    expect(relError(viaOrt.Y3!, adapted.Y3!)).toBeLessThan(2e-3);
    expect(maxAbsDiff(adapted.Y3!, a.Y3!)).toBeGreaterThan(1e-2);
    const w = graphOf(merge(live)).initializer.find((t) => t.name === 'onnx::MatMul_7')!;
    expect(w.dataType).toBe(DT.FLOAT16);
  }, 30_000);
});

async function runFp16(model: OnnxModel): Promise<Record<string, Float32Array>> {
  // Feed X as fp16 by inserting a Cast in front: simplest is to run the graph with X cast.
  const { create, GraphProtoSchema } = await import('../../src/onnx/proto.ts');
  const { makeValueInfo } = await import('../../src/onnx/graph.ts');
  const g = graphOf(model);
  const cast = { opType: 'Cast', name: 'cast_in', input: ['X32'], output: ['X'], attribute: [{ name: 'to', type: 2, i: BigInt(DT.FLOAT16) }] };
  const outs = g.output.map((o) => o.name);
  const casts = outs.map((o) => ({ opType: 'Cast', name: `cast_${o}`, input: [o], output: [`${o}_f32`], attribute: [{ name: 'to', type: 2, i: 1n }] }));
  const graph = create(GraphProtoSchema, {
    name: 'fp16',
    input: [makeValueInfo('X32', DT.FLOAT, [2, 4])],
    output: outs.map((o) => makeValueInfo(`${o}_f32`)),
    initializer: g.initializer,
    node: [cast, ...g.node, ...casts],
  } as never);
  const proto = { ...model.proto, graph } as typeof model.proto;
  Object.setPrototypeOf(proto, Object.getPrototypeOf(model.proto));
  const res = await runModel({ proto, baseDir: model.baseDir }, { X32: feeds.X });
  return Object.fromEntries(Object.entries(res).map(([k, v]) => [k.replace(/_f32$/, ''), v]));
}

describe('LoRA', () => {
  it('ΔW = (alpha/r)·Aᵀ·Bᵀ in [in, out]; transB=1 handled; merge agrees', async () => {
    const r = 3;
    const init = new Map<string, Float32Array>([
      ['g.lora_A.weight', flat(randomMat(r, 4, 1))],
      ['g.lora_B.weight', flat(randomMat(5, r, 2))],
      ['m.lora_A.weight', flat(randomMat(r, 4, 3))],
      ['m.lora_B.weight', flat(randomMat(6, r, 4))],
    ]);
    const original = threeLayers();
    const { model, meta } = inject(original, { method: 'lora', targets: 'g,m', r, alpha: 6, init });
    expect(meta.config).toEqual({ method: 'lora', r, alpha: 6 });
    const got = await runModel(model, feeds);
    const delta = (mod: string, out: number) => {
      const A = toMat(init.get(`${mod}.lora_A.weight`)!, r, 4);
      const B = toMat(init.get(`${mod}.lora_B.weight`)!, out, r);
      return matmul(T(A), T(B)).map((row) => row.map((v) => (v * 6) / r));
    };
    const y1 = matmul(X, add(T(Wg), delta('g', 5))).map((row) => row.map((v, j) => v + bias[j]!));
    expect(relError(got.Y1!, flat(y1))).toBeLessThan(1e-5);
    expect(relError(got.Y3!, flat(matmul(X, add(Wm, delta('m', 6)))))).toBeLessThan(1e-5);
    const m = await runModel(merge(model), feeds);
    expect(maxAbsDiff(m.Y1!, got.Y1!)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(m.Y3!, got.Y3!)).toBeLessThanOrEqual(1e-5);
  }, 30_000);

  it('default init: lora_A Kaiming-uniform over fan_in = in, lora_B zeros', () => {
    const { state } = inject(threeLayers(), { method: 'lora', targets: 'm', r: 4 });
    const a = state.get('m.lora_A.weight')!;
    expect(a).toHaveLength(16);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(4));
    expect(state.get('m.lora_B.weight')!.every((v) => v === 0)).toBe(true);
  });
});

describe('initialisation and state', () => {
  it('PEFT default init: U(±1/√fan_in) with fan_in = size(1), B zeros; seeded', () => {
    const opts: InjectOptions = { targets: 'g,m', r: 8, depth: 1 };
    const a = inject(threeLayers(), { ...opts, seed: 1 }).state;
    const b = inject(threeLayers(), { ...opts, seed: 1 }).state;
    const c = inject(threeLayers(), { ...opts, seed: 2 }).state;
    expect([...a.keys()]).toEqual([
      'g.peanut_A.weight',
      'g.peanut_encoders.0.weight',
      'g.peanut_decoders.0.weight',
      'g.peanut_B.weight',
      'm.peanut_A.weight',
      'm.peanut_encoders.0.weight',
      'm.peanut_decoders.0.weight',
      'm.peanut_B.weight',
    ]);
    for (const [k, v] of a) expect(v).toEqual(b.get(k));
    expect(a.get('g.peanut_A.weight')).not.toEqual(c.get('g.peanut_A.weight'));
    const A = a.get('m.peanut_A.weight')!; // [8, 6]: bound 1/√6
    expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(6));
    expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.6 / Math.sqrt(6));
    const E = a.get('m.peanut_encoders.0.weight')!; // [8, 8]: bound 1/√8
    expect(Math.max(...E.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(8));
    expect(a.get('m.peanut_B.weight')!.every((v) => v === 0)).toBe(true);
    // a parameter's values do not depend on which other layers are adapted
    const alone = inject(threeLayers(), { ...opts, targets: 'm', seed: 1 }).state;
    expect(alone.get('m.peanut_A.weight')).toEqual(A);
    expect(initParam({ suffix: 'x', shape: [2, 2], init: 'zeros' }, 'k', 0)).toEqual(new Float32Array(4));
  });

  it('records the adapter in metadata_props', () => {
    const { model } = inject(threeLayers(), { targets: 'g,c', r: 2, depth: 1, act: 'silu', scaling: 2, seed: 5 });
    const meta = readAdapterMeta(model)!;
    expect(model.proto.metadataProps.map((e) => e.key)).toContain(ADAPTER_META_KEY);
    expect(meta.config).toEqual({ method: 'peanut', r: 2, depth: 1, act: 'silu', scaling: 2 });
    expect(meta.targetModules).toBe('g,c');
    expect(meta.targets.map((t) => [t.module, t.node, t.weight, t.weightSource, t.transB, t.in, t.out])).toEqual([
      ['g', '/g/Gemm', 'g.weight', 'initializer', true, 4, 5],
      ['c', '/c/MatMul', 'wc', 'constant', false, 4, 3],
    ]);
    expect(meta.targets[0]!.params).toEqual([
      { name: 'g.peanut_A.weight', shape: [2, 5] },
      { name: 'g.peanut_encoders.0.weight', shape: [2, 2] },
      { name: 'g.peanut_decoders.0.weight', shape: [2, 2] },
      { name: 'g.peanut_B.weight', shape: [5, 2] },
    ]);
    const names = new Set(graphOf(model).node.map((n) => n.name));
    for (const t of meta.targets) for (const n of t.nodes) expect(names.has(n)).toBe(true);
    // no com.microsoft or other custom-domain ops
    expect(graphOf(model).node.every((n) => n.domain === '')).toBe(true);
  });

  it('does not modify the input model', () => {
    const original = threeLayers();
    const before = encodeModel(original.proto);
    const { model } = inject(original, { targets: 'g,c,m', r: 2 });
    merge(model);
    expect(Buffer.compare(Buffer.from(encodeModel(original.proto)), Buffer.from(before))).toBe(0);
  });

  it('tweaker files round-trip; checkpoints resolve to the highest step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peanut-state-'));
    const { meta, state } = inject(threeLayers(), { targets: 'g,m', r: 2, depth: 1, seed: 9 });
    writeTweakerState(join(dir, 't.safetensors'), meta, state);
    const params = meta.targets.flatMap((t) => t.params);
    const back = readTweakerState(join(dir, 't.safetensors'), params);
    for (const [k, v] of state) expect(back.get(k)).toEqual(v);
    mkdirSync(join(dir, 'run', 'checkpoints'), { recursive: true });
    for (const s of [2, 10, 9]) writeFileSync(join(dir, 'run', 'checkpoints', `step-${s}.safetensors`), '');
    expect(resolveCheckpoint(join(dir, 'run'))).toBe(join(dir, 'run', 'checkpoints', 'step-10.safetensors'));
    expect(() => resolveCheckpoint(join(dir, 'nope'))).toThrow(/checkpoint not found/);
    expect(() => resolveCheckpoint(dir)).toThrow(/no checkpoints\/step-<N>\.safetensors/);
  });

  it('merge takes parameters from a checkpoint and ignores optimizer keys', async () => {
    const { model, meta } = inject(threeLayers(), { targets: 'm', r: 2 });
    const ckpt = peanutInit('m', 6, 2, 0, 7);
    const other = inject(threeLayers(), { targets: 'm', r: 2, init: ckpt }).model;
    const merged = merge(model, { params: ckpt });
    expect(maxAbsDiff((await runModel(merged, feeds)).Y3!, (await runModel(other, feeds)).Y3!)).toBeLessThanOrEqual(1e-5);
    expect(meta.targets).toHaveLength(1);
  }, 30_000);
});

describe('EXPECTED FAILURE - library errors', () => {
  const code = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      if (e instanceof PeanutError) return `${e.code}: ${e.message}`;
      throw e;
    }
    return 'no error';
  };

  it('bad rank, depth, activation, scaling, method', () => {
    expect(code(() => inject(threeLayers(), { targets: 'm', r: 0 }))).toMatch(/^E_BAD_CONFIG: rank must be an integer >= 1, got '0'/);
    expect(code(() => inject(threeLayers(), { targets: 'm', r: '2.5' }))).toMatch(/^E_BAD_CONFIG: rank/);
    expect(code(() => inject(threeLayers(), { targets: 'm', depth: -1 }))).toMatch(/^E_BAD_CONFIG: depth must be an integer >= 0/);
    expect(code(() => inject(threeLayers(), { targets: 'm', act: 'swishy' }))).toMatch(/^E_BAD_CONFIG: unknown activation 'swishy'; valid: relu, gelu, gelu_tanh, silu, tanh, sigmoid/);
    expect(code(() => inject(threeLayers(), { targets: 'm', scaling: 'x' }))).toMatch(/^E_BAD_CONFIG: scaling/);
    expect(code(() => inject(threeLayers(), { targets: 'm', method: 'dora' }))).toMatch(/^E_BAD_CONFIG: unknown method 'dora'; valid: peanut, lora/);
  });

  it('opset too old for the activation', () => {
    const old = tinyModel([['X', [2, 4]]], ['Y'], (_b, g) => {
      g.addInitializer(floatTensor('w', [4, 3], new Float32Array(12)));
      g.addNode({ opType: 'MatMul', inputs: ['X', 'w'], outputs: ['Y'], name: '/m/MatMul' });
    }, 8);
    expect(code(() => inject(old, { targets: 'm', r: 2, act: 'gelu' }))).toMatch(/^E_BAD_CONFIG: --act gelu needs opset >= 9/);
    expect(code(() => inject(old, { targets: 'm', r: 2, act: 'relu' }))).toBe('no error');
  });

  it('already adapted', () => {
    const { model } = inject(threeLayers(), { targets: 'm', r: 2 });
    expect(code(() => inject(model, { targets: 'g', r: 2 }))).toMatch(/^E_ALREADY_ADAPTED: the model is already adapted/);
  });

  it('--init with missing, extra and mis-shaped keys lists them', () => {
    const init = peanutInit('m', 6, 2, 0, 1);
    init.delete('m.peanut_B.weight');
    init.set('m.peanut_A.weight', new Float32Array(5));
    init.set('zzz.weight', new Float32Array(1));
    const msg = code(() => inject(threeLayers(), { targets: 'm', r: 2, init, initName: 'init.safetensors' }));
    expect(msg).toMatch(/^E_BAD_SAFETENSORS: init\.safetensors does not match the adapter/);
    expect(msg).toMatch(/missing 1 key\(s\): m\.peanut_B\.weight/);
    expect(msg).toMatch(/1 unexpected key\(s\): zzz\.weight/);
    expect(msg).toMatch(/wrong shape: m\.peanut_A\.weight is \[5\], expected \[2, 6\]/);
  });

  it('merge of a plain model; --safe refuses NaN/Inf', () => {
    expect(code(() => merge(threeLayers()))).toMatch(/^E_NOT_ADAPTED: .*has no tweakers/);
    const init = peanutInit('m', 6, 2, 0, 1);
    init.get('m.peanut_B.weight')![0] = Number.POSITIVE_INFINITY;
    const { model } = inject(threeLayers(), { targets: 'm', r: 2, init });
    expect(code(() => merge(model, { safe: true }))).toMatch(/^E_NON_FINITE: merged weight of m \('onnx::MatMul_7'\) has a non-finite value/);
    expect(code(() => merge(model))).toBe('no error');
  });

  it('merge with parameters missing', () => {
    const { model } = inject(threeLayers(), { targets: 'm', r: 2 });
    expect(code(() => merge(model, { params: new Map() }))).toMatch(/^E_BAD_SAFETENSORS: .*missing m\.peanut_A\.weight, m\.peanut_B\.weight/);
  });

  it('safetensors parameter files with PEFT prefixes are accepted', () => {
    const init = peanutInit('m', 6, 2, 0, 1);
    const dir = mkdtempSync(join(tmpdir(), 'peanut-peft-'));
    const tensors = new Map([...init].map(([k, v]) => [`base_model.model.${k}`, { dtype: 'F32' as const, shape: k.endsWith('A.weight') ? [2, 6] : [6, 2], data: v }]));
    writeFileSync(join(dir, 'a.safetensors'), Buffer.concat(encodeSafetensors(tensors)));
    const { meta } = inject(threeLayers(), { targets: 'm', r: 2 });
    const st = readTweakerState(join(dir, 'a.safetensors'), meta.targets[0]!.params);
    expect(st.get('m.peanut_A.weight')).toEqual(init.get('m.peanut_A.weight'));
  });
});
