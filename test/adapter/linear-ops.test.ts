/**
 * Weight-holding ops beyond MatMul/Gemm (linear-ops.ts): com.microsoft FusedMatMul, GemmFastGelu
 * and the packed q/k/v weight of Attention are candidates with the right layout, injection feeds
 * W0 + ΔW into the op's weight input, and merge folds ΔW back into the initializer; quantized
 * layers and a batch-transposing FusedMatMul are skipped with the reason.
 */
import { describe, expect, it } from 'vitest';
import { create, NodeProtoSchema, OperatorSetIdProtoSchema, toBinary } from '../../src/onnx/proto.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { float, type AttrValue } from '../../src/onnx/attributes.ts';
import { floatTensor, makeTensor, tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { discoverTargets } from '../../src/adapter/targets.ts';
import { inject } from '../../src/adapter/inject.ts';
import { merge } from '../../src/adapter/merge.ts';
import { Random } from '../../src/util/random.ts';
import { add, matmul, peanutDeltaRef, runModel, T, tinyModel, type Mat } from './tiny.ts';

const ms = (m: OnnxModel): OnnxModel => {
  m.proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n }));
  return m;
};
const rand = (n: number, seed: number) => new Random(seed).fillUniform(new Float32Array(n), -1, 1);
const mat = (data: Float32Array, rows: number, cols: number): Mat => Array.from({ length: rows }, (_, i) => Array.from(data.subarray(i * cols, (i + 1) * cols)));

/** X [2, 4] · W → Y by one com.microsoft op reading W as input 1. */
function oneOp(opType: string, w: Float32Array, wDims: [number, number], attrs: Record<string, AttrValue> = {}): OnnxModel {
  return ms(
    tinyModel([['X', [2, 4]]], ['Y'], (_b, g) => {
      g.addInitializer(floatTensor('w', wDims, w));
      g.addNode({ opType, domain: 'com.microsoft', inputs: ['X', 'w'], outputs: ['Y'], attrs, name: `/layer/${opType}` });
    }),
  );
}

describe('com.microsoft FusedMatMul', () => {
  const w = rand(12, 1);
  const x = rand(8, 2);

  it.each([
    [0, [4, 3], 'io'],
    [1, [3, 4], 'oi'],
  ] as const)('transB=%i: a candidate stored %j (%s); adapted and merged models compute alpha·X·(W0 + ΔW)', async (transB, dims, layout) => {
    const model = oneOp('FusedMatMul', w, [...dims], { transB, alpha: float(1.5) });
    const [c] = discoverTargets(model).candidates;
    expect(c).toMatchObject({ op: 'FusedMatMul', domain: 'com.microsoft', weightInput: 1, feedInput: 1, layout, in: 4, out: 3, transB: transB === 1 });

    const r = 2;
    const init = new Map([
      ['layer.peanut_A.weight', rand(r * 3, 3)],
      ['layer.peanut_B.weight', rand(3 * r, 4)],
    ]);
    const { model: adapted, meta } = inject(model, { targets: 'layer', r, init });
    expect(meta.targets[0]).toMatchObject({ op: 'FusedMatMul', domain: 'com.microsoft', output: '/peanut_onnx/layer/W' });
    const node = graphOf(adapted).node.find((n) => n.name === '/layer/FusedMatMul')!;
    expect(node.input[1]).toBe('/peanut_onnx/layer/W');

    // Reference: W0 [in, out] + ΔW, then X · W.
    const w0 = layout === 'io' ? mat(w, 4, 3) : T(mat(w, 3, 4));
    const delta = peanutDeltaRef(w0, mat(init.get('layer.peanut_A.weight')!, r, 3), [], [], mat(init.get('layer.peanut_B.weight')!, 3, r), 'relu', 1);
    const want = matmul(mat(x, 2, 4), add(w0, delta)).flat().map((v) => 1.5 * v);
    const got = (await runModel(adapted, { X: [x, [2, 4]] })).Y!;
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));

    const merged = merge(adapted);
    expect(graphOf(merged).node.map((n) => toBinary(NodeProtoSchema, n))).toEqual(graphOf(model).node.map((n) => toBinary(NodeProtoSchema, n)));
    const fromMerged = (await runModel(merged, { X: [x, [2, 4]] })).Y!;
    fromMerged.forEach((v, i) => expect(v).toBeCloseTo(got[i]!, 5));
  });

  it('transposing batch axes (transBatchB=1) is skipped with the reason', () => {
    const d = discoverTargets(oneOp('FusedMatMul', w, [4, 3], { transBatchB: 1 }));
    expect(d.candidates).toEqual([]);
    expect(d.skipped[0]).toMatchObject({ op: 'FusedMatMul (com.microsoft)', reason: expect.stringMatching(/transBatchB=1/) });
  });
});

describe('com.microsoft GemmFastGelu', () => {
  it('its weight is a candidate and the adapted weight feeds input 1; merge folds it back', () => {
    // ONNX Runtime's CPU provider has no GemmFastGelu kernel: the graph is checked, and merge's
    // weight against the reference W0 + ΔW.
    const w = rand(12, 5);
    const model = oneOp('GemmFastGelu', w, [4, 3]);
    const [c] = discoverTargets(model).candidates;
    expect(c).toMatchObject({ op: 'GemmFastGelu', domain: 'com.microsoft', layout: 'io', in: 4, out: 3 });
    const init = new Map([
      ['layer.peanut_A.weight', rand(6, 6)],
      ['layer.peanut_B.weight', rand(6, 7)],
    ]);
    const { model: adapted } = inject(model, { targets: 'layer', r: 2, init });
    expect(graphOf(adapted).node.find((n) => n.opType === 'GemmFastGelu')!.input).toEqual(['X', '/peanut_onnx/layer/W']);
    const merged = merge(adapted);
    expect(graphOf(merged).node.map((n) => toBinary(NodeProtoSchema, n))).toEqual(graphOf(model).node.map((n) => toBinary(NodeProtoSchema, n)));
    const w0 = mat(w, 4, 3);
    const want = add(w0, peanutDeltaRef(w0, mat(init.get('layer.peanut_A.weight')!, 2, 3), [], [], mat(init.get('layer.peanut_B.weight')!, 3, 2), 'relu', 1)).flat();
    const got = tensorToFloat32(graphOf(merged).initializer.find((t) => t.name === 'w')!, merged.baseDir);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
  });
});

describe('quantized layers', () => {
  it('are listed as skipped, with the reason and the way out', () => {
    const model = ms(
      tinyModel([['X', [2, 4]]], ['Y', 'Z'], (_b, g) => {
        g.addInitializer(makeTensor('wq', DT.UINT8, [3, 1, 2], new Uint8Array(6)));
        g.addInitializer(floatTensor('scales', [3], new Float32Array(3).fill(1)));
        g.addNode({ opType: 'MatMulNBits', domain: 'com.microsoft', inputs: ['X', 'wq', 'scales'], outputs: ['Y'], attrs: { K: 4, N: 3, bits: 4, block_size: 16 }, name: '/q/MatMulNBits' });
        g.addInitializer(makeTensor('w8', DT.INT8, [4, 3], new Uint8Array(12)));
        g.addInitializer(floatTensor('s', [], Float32Array.of(0.1)));
        g.addNode({ opType: 'DequantizeLinear', inputs: ['w8', 's'], outputs: ['wd'], name: '/d/DequantizeLinear' });
        g.addNode({ opType: 'MatMul', inputs: ['X', 'wd'], outputs: ['Z'], name: '/d/MatMul' });
      }),
    );
    const d = discoverTargets(model);
    expect(d.candidates).toEqual([]);
    expect(d.skipped.map((s) => [s.op, s.module])).toEqual([
      ['MatMulNBits (com.microsoft)', 'q'],
      ['MatMul', 'd'],
    ]);
    expect(d.skipped[0]!.reason).toMatch(/block-quantized \(MatMulNBits\); quantized weights cannot be adapted; adapt the float model, merge, then quantize/);
    expect(d.skipped[1]!.reason).toMatch(/dequantized at run time \(DequantizeLinear '\/d\/DequantizeLinear'\)/);
  });
});
