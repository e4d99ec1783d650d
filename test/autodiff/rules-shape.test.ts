/**
 * Finite-difference checks of the shape, reduction, normalisation and indexing gradient rules
 * through onnxruntime (see test/helpers/gradcheck.ts). Most cases give `altDims`: the gradient
 * graph is built once from shapes probed at both sizes and checked at both, so a rule that baked
 * a run-time size into a constant fails. float64 where ORT's CPU kernels take doubles; float32
 * (eps 1e-2, atol = rtol = 2e-3) where they do not: Conv/ConvTranspose, Mean, GlobalAveragePool,
 * GlobalMaxPool, InstanceNormalization, and LayerNorm's Mean/InvStdDev outputs (float32 in ORT).
 * Some cases also assert which backward path was taken (Pad vs ScatterND, OneHot vs ScatterND).
 * The cases are in cases-shape.ts.
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { describe, expect, it } from 'vitest';
import type { AttrValue } from '../../src/onnx/attributes.ts';
import { DataType as DT, floatToHalfBits, halfBitsToFloat } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { floatTensor, int64Tensor } from '../../src/onnx/tensor.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { gradCheck, randomValues, type GradCheckCase } from '../helpers/gradcheck.ts';
import { i64, SHAPE_CASES as CASES } from './cases-shape.ts';

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

describe('gradient rules: shape, reduction, normalisation, indexing (finite differences through onnxruntime)', () => {
  it.each(CASES)('%s', async (_label, c, expectOps) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
    for (const op of expectOps?.uses ?? []) expect(r.backwardOps).toContain(op);
    for (const op of expectOps?.avoids ?? []) expect(r.backwardOps).not.toContain(op);
  });

  it('every rule of this family has a case above', () => {
    const covered = new Set(CASES.map(([, c]) => c.op));
    expect(FAMILY.filter((op) => !covered.has(op))).toEqual([]);
  });
});

/** The shape, reduction, normalisation and indexing rules (src/autodiff/rules/<op>.ts). */
const FAMILY = [
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSumSquare', 'ReduceL2', 'ReduceL1', 'ReduceLogSumExp', 'ReduceLogSum', 'ReduceProd',
  'LayerNormalization', 'BatchNormalization', 'InstanceNormalization', 'GroupNormalization', 'GlobalAveragePool', 'GlobalMaxPool', 'AveragePool', 'MaxPool',
  'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten', 'DepthToSpace', 'SpaceToDepth', 'Concat', 'Split', 'Slice', 'Expand', 'Tile', 'Pad', 'CumSum',
  'Gather', 'GatherElements', 'GatherND', 'ScatterND', 'ScatterElements', 'TopK',
  'Conv', 'ConvTranspose', 'Einsum', 'Sin', 'Cos', 'Abs', 'LeakyRelu', 'Sum', 'Mean', 'Trilu',
];

const UNSUPPORTED: Array<[string, GradCheckCase, RegExp]> = [
  ['MaxPool-8 with dynamic spatial dims (no scatter before opset 9)', { op: 'MaxPool', opset: 8, attrs: { kernel_shape: [2], strides: [2] }, inputs: [{ name: 'x', dims: [1, 1, 4], altDims: [1, 1, 6] }] }, /needs opset 9/],
  ['Pad reflect mode', { op: 'Pad', opset: 13, attrs: { mode: 'reflect' }, inputs: [{ name: 'x', dims: [2, 3] }, i64('pads', [0, 1, 0, 1])] }, /Pad node .*mode 'reflect'/],
  ['ScatterND reduction=max', { op: 'ScatterND', opset: 18, attrs: { reduction: 'max' }, inputs: [{ name: 'data', dims: [3, 2] }, i64('idx', [0], [1, 1]), { name: 'upd', dims: [1, 2] }] }, /reduction 'max'/],
  [
    'BatchNormalization-9 training with its saved mean used',
    { op: 'BatchNormalization', opset: 9, outputs: 5, skipOutputs: [1, 2, 4], dtype: 'float32', inputs: [{ name: 'x', dims: [4, 2] }, { name: 'scale', dims: [2] }, { name: 'bias', dims: [2] }, { name: 'mean', dims: [2], constant: true, values: [0, 0] }, { name: 'var', dims: [2], constant: true, values: [1, 1] }] },
    /saved mean/,
  ],
];

describe('shape-family rules: unsupported variants fail loudly', () => {
  it.each(UNSUPPORTED)('EXPECTED FAILURE - %s', async (_label, c, message) => {
    await expect(gradCheck(c)).rejects.toMatchObject({ code: 'E_UNSUPPORTED_OP', message: expect.stringMatching(message) });
  });
});

describe('MaxPool ties', () => {
  // Central differences cannot see a tie; the gradient must go where MaxPool's own Indices point
  // (the first maximum of the window) at every opset, scatter path (11) and sampling path (8) alike.
  it('the sampling path (opset 8) gives the gradient to the same element as the Indices (opset 11)', async () => {
    const grads: number[][] = [];
    for (const opset of [8, 11]) {
      const g = create(GraphProtoSchema, { name: 'ties' });
      g.input.push(makeValueInfo('x', DT.FLOAT, [1, 1, 2, 4]), makeValueInfo('dy', DT.FLOAT, [1, 1, 1, 2]));
      const graph = new Graph(g);
      graph.addNode({ opType: 'MaxPool', inputs: ['x'], outputs: ['y'], attrs: { kernel_shape: [2, 2], strides: [2, 2] }, name: 'pool' });
      g.output.push(makeValueInfo('y'));
      const proto = create(ModelProtoSchema, { irVersion: 8n, graph: g, opsetImport: [{ domain: '', version: BigInt(opset) }] });
      const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, 3, 5, 5, 3, 1, 5, 5]), [1, 1, 2, 4]), dy: new ort.Tensor('float32', Float32Array.from([10, 20]), [1, 1, 1, 2]) };
      const shapes = await probeShapes(nodeRuntime, { proto, baseDir: '.' }, { batches: [feeds, feeds] });
      const built = buildGradients({ graph, opset, seeds: new Map([['y', 'dy']]), params: ['x'], shapes });
      g.output = [makeValueInfo(built.grads.get('x')!)];
      const session = await ort.InferenceSession.create(encodeModel(proto));
      grads.push(Array.from((await session.run(feeds))[built.grads.get('x')!]!.data as Float32Array));
      await session.release();
    }
    // Window 1 holds 3 twice (row 0 col 1, row 1 col 0): the first; window 2 holds 5 four times.
    expect(grads[1]).toEqual([0, 10, 20, 0, 0, 0, 0, 0]);
    expect(grads[0]).toEqual(grads[1]);
  });
});

// ---- half precision -------------------------------------------------------------------------
// float16 has no finite differences worth the name; instead the float16 backward graph must build,
// run on the CPU EP (casting around kernels it lacks, e.g. ScatterND/ScatterElements with
// reduction='add') and agree with the float32 graph within half-precision rounding.

interface HalfCase {
  op: string;
  opset: number;
  attrs?: Record<string, AttrValue>;
  x: number[];
  /** Constant int64 inputs after x (axes, indices, pads…). */
  ints?: Array<{ dims: number[]; values: number[] }>;
  /** x is passed twice (Concat, Sum). */
  twice?: boolean;
  outputs?: number;
}

const HALF_CASES: HalfCase[] = [
  { op: 'ReduceMean', opset: 18, x: [2, 3], ints: [{ dims: [1], values: [1] }] },
  { op: 'ReduceMax', opset: 13, attrs: { axes: [1] }, x: [2, 3] },
  { op: 'LayerNormalization', opset: 17, x: [2, 4] },
  { op: 'Concat', opset: 13, attrs: { axis: 0 }, x: [2, 3], twice: true },
  { op: 'Split', opset: 13, attrs: { axis: 1 }, x: [2, 4], outputs: 2 },
  { op: 'Slice', opset: 13, x: [2, 4], ints: [{ dims: [1], values: [0] }, { dims: [1], values: [4] }, { dims: [1], values: [1] }, { dims: [1], values: [2] }] },
  { op: 'Gather', opset: 13, x: [3, 2], ints: [{ dims: [3], values: [0, 2, 0] }] },
  { op: 'Gather', opset: 18, x: [3, 2], ints: [{ dims: [3], values: [0, 2, 0] }] },
  { op: 'GatherElements', opset: 18, x: [2, 2], ints: [{ dims: [2, 2], values: [0, 1, 1, 1] }] },
  { op: 'GatherND', opset: 18, x: [3, 2], ints: [{ dims: [3, 1], values: [2, 0, 2] }] },
  { op: 'Tile', opset: 13, x: [1, 3], ints: [{ dims: [2], values: [2, 1] }] },
  { op: 'Pad', opset: 13, x: [2, 3], ints: [{ dims: [4], values: [0, -1, 0, 1] }] },
  { op: 'CumSum', opset: 14, x: [2, 3], ints: [{ dims: [], values: [1] }] },
];

async function halfGrad(c: HalfCase, dt: number): Promise<number[]> {
  const g = create(GraphProtoSchema, { name: `half_${c.op}` });
  g.input.push(makeValueInfo('x', dt, c.x));
  const inputs = c.twice ? ['x', 'x'] : ['x'];
  (c.ints ?? []).forEach((t, i) => {
    g.initializer.push(int64Tensor(`k${i}`, t.dims, t.values));
    inputs.push(`k${i}`);
  });
  if (c.op === 'LayerNormalization') {
    g.initializer.push(floatTensor('scale', [c.x.at(-1)!], randomValues(c.x.at(-1)!, 3, 0.5, 1.5), dt));
    inputs.push('scale');
  }
  const graph = new Graph(g);
  const outs = Array.from({ length: c.outputs ?? 1 }, (_, k) => `y${k}`);
  graph.addNode({ opType: c.op, inputs, outputs: outs, attrs: c.attrs, name: 'node' });
  for (const o of outs) g.output.push(makeValueInfo(o));
  const proto = create(ModelProtoSchema, { irVersion: 9n, graph: g, opsetImport: [{ domain: '', version: BigInt(c.opset) }] });
  const tensor = (values: number[], dims: readonly number[]) =>
    dt === DT.FLOAT16 ? new ort.Tensor('float16', Uint16Array.from(values, floatToHalfBits), dims) : new ort.Tensor('float32', Float32Array.from(values), dims);
  const feeds: Record<string, ort.Tensor> = { x: tensor(randomValues(numel(c.x), 2), c.x) };
  const shapes = await probeShapes(nodeRuntime, { proto, baseDir: '.' }, { batches: [feeds, feeds] });
  const seeds = new Map<string, string>();
  outs.forEach((o, k) => {
    const dims = shapes.get(o)!.shape as number[];
    g.input.push(makeValueInfo(`${o}_seed`, dt, dims));
    shapes.set(`${o}_seed`, { dtype: dt, shape: dims });
    feeds[`${o}_seed`] = tensor(randomValues(numel(dims), 40 + k), dims);
    seeds.set(o, `${o}_seed`);
  });
  const { grads } = buildGradients({ graph, opset: c.opset, seeds, params: ['x'], shapes });
  const gx = grads.get('x')!;
  g.output.push(makeValueInfo(gx));
  const session = await ort.InferenceSession.create(encodeModel(proto), { executionProviders: ['cpu'] });
  try {
    const data = (await session.run(feeds, [gx]))[gx]!.data as Uint16Array | Float32Array;
    return dt === DT.FLOAT16 ? Array.from(data as Uint16Array, halfBitsToFloat) : Array.from(data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('shape-family rules in float16 (CPU EP)', () => {
  it.each(HALF_CASES.map((c) => [`${c.op}-${c.opset}`, c] as const))('%s runs and matches float32', async (_label, c) => {
    const [half, single] = [await halfGrad(c, DT.FLOAT16), await halfGrad(c, DT.FLOAT)];
    expect(half.length).toBe(single.length);
    const scale = Math.max(1, ...single.map(Math.abs));
    const err = Math.max(...half.map((v, i) => Math.abs(v - single[i]!)));
    expect(err).toBeLessThanOrEqual(1e-2 * scale);
  });
});
