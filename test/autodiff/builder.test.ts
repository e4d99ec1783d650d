/**
 * The generic builder and its parts: registry table, shape probing, unbroadcast axes, loss heads
 * against JS references (values and gradients), the unsupported-op error, stop-gradient edges.
 */
import type { TensorLike } from '../../src/runtime/session.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { describe, expect, it } from 'vitest';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { encodeModel, type OnnxModel } from '../../src/onnx/model.ts';
import { floatTensor, int64Tensor } from '../../src/onnx/tensor.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { PeanutError } from '../../src/errors.ts';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { createRegistry, defaultRegistry, NO_GRADIENT } from '../../src/autodiff/registry.ts';
import { RULES } from '../../src/autodiff/rules/index.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { type ShapeTable } from '../../src/onnx/shapes.ts';
import { broadcastAxes } from '../../src/autodiff/broadcast.ts';
import { appendLossHead, type Task } from '../../src/train/loss.ts';
import type { GraphBuilder } from '../../src/onnx/builder.ts';
import { randomValues } from '../helpers/gradcheck.ts';

function model(g: ReturnType<typeof create<typeof GraphProtoSchema>>, opset = 17): OnnxModel {
  return { proto: create(ModelProtoSchema, { irVersion: 10n, graph: g, opsetImport: [{ domain: '', version: BigInt(opset) }] }), baseDir: '.' };
}

describe('registry', () => {
  it('has every rule of rules/index.ts and the no-gradient ops', () => {
    const reg = defaultRegistry();
    for (const r of RULES) expect(reg.rule(r.domain ?? '', r.opType)).toBe(r);
    for (const op of ['MatMul', 'Gemm', 'Add', 'Softmax', 'LogSoftmax', 'Gelu', 'Where', 'Cast', 'Dropout']) expect(reg.rule('', op), op).toBeDefined();
    for (const op of ['Shape', 'Size', 'Equal', 'Range', 'ConstantOfShape', 'NonZero', 'ArgMax']) expect(reg.isNoGradient('', op), op).toBe(true);
    // The attention family: fused forward, backward in standard ops.
    for (const [domain, op] of [['', 'Attention'], ['', 'RotaryEmbedding'], ['', 'TensorScatter'], ['com.microsoft', 'Attention'], ['com.microsoft', 'MultiHeadAttention'], ['com.microsoft', 'GroupQueryAttention'], ['com.microsoft', 'RotaryEmbedding']] as const) {
      expect(reg.rule(domain, op), `${domain}::${op}`).toBeDefined();
    }
    expect(reg.rule('', 'Attention')).not.toBe(reg.rule('com.microsoft', 'Attention'));
    expect(reg.rule('', 'Hardmax')).toBeUndefined();
    expect(reg.rule('ai.onnx', 'MatMul')).toBe(reg.rule('', 'MatMul'));
  });

  it('EXPECTED FAILURE - a duplicate registration throws', () => {
    const add = RULES.find((r) => r.opType === 'Add')!;
    expect(() => createRegistry([add, add])).toThrow(/'Add' is registered twice/);
    expect(() => createRegistry([{ opType: 'Shape', grad: () => [] }], NO_GRADIENT)).toThrow(/twice/);
  });
});

describe('unbroadcast axes', () => {
  it.each([
    [[2, 3, 4], [3, 1], { keep: [2], lead: 1 }],
    [[null, 3, 4], [1, 4], { keep: [1], lead: 1 }],
    [[null, null, 8], [null, null, 8], { keep: [], lead: 0 }],
    [[null, 1, null], [1, 1, null], { keep: [0], lead: 0 }],
    [[2, 3], [], { keep: [], lead: 2 }],
  ] as const)('%j -> %j', (g, l, want) => {
    expect(broadcastAxes(g, l)).toEqual(want);
  });
});

describe('shape probing', () => {
  it('marks dims that differ between the runs as dynamic and keeps the rest', async () => {
    const g = create(GraphProtoSchema, { name: 'p' });
    g.input.push(makeValueInfo('ids', DT.INT64, ['batch', 'seq']), makeValueInfo('attention_mask', DT.INT64, ['batch', 'seq']));
    g.initializer.push(floatTensor('emb', [5, 3], randomValues(15, 1)));
    const graph = new Graph(g);
    graph.addNode({ opType: 'Gather', inputs: ['emb', 'ids'], outputs: ['h'] });
    graph.addNode({ opType: 'Cast', inputs: ['attention_mask'], outputs: ['m'], attrs: { to: DT.FLOAT } });
    graph.addNode({ opType: 'ReduceSum', inputs: ['h'], outputs: ['s'], attrs: { keepdims: 0 } });
    g.output.push(makeValueInfo('s'));
    const shapes = await probeShapes(nodeRuntime, model(g));
    // Dynamic values keep each run's dims (batch 2, 3; seq 3, 5), which tell their dims apart.
    expect(shapes.get('h')).toEqual({ dtype: DT.FLOAT, shape: [null, null, 3], samples: [[2, 3, 3], [3, 5, 3]] });
    expect(shapes.get('m')).toEqual({ dtype: DT.FLOAT, shape: [null, null], samples: [[2, 3], [3, 5]] });
    expect(shapes.get('s')).toEqual({ dtype: DT.FLOAT, shape: [] });
    expect(shapes.get('emb')).toEqual({ dtype: DT.FLOAT, shape: [5, 3] });
    expect(shapes.get('ids')!.dtype).toBe(DT.INT64);
  });
});

describe('dynamic shapes in the backward', () => {
  it('reads no forward activation only for its shape (linear layer, head split, mean), and the gradient is right at two sizes', async () => {
    // x [batch, seq, 8] · w [8, 6] -> Reshape [0, 0, 2, 3] -> ReduceMean(-1) -> ReduceSum = loss
    // loss = (1/3) Σ x·w, so dL/dx[b, s, i] = (1/3) Σ_j w[i, j] at every size.
    const g = create(GraphProtoSchema, { name: 'dyn' });
    g.input.push(makeValueInfo('x', DT.FLOAT, ['batch', 'seq', 8]));
    const w = randomValues(48, 5);
    g.initializer.push(floatTensor('w', [8, 6], w), int64Tensor('heads', [4], [0, 0, 2, 3]));
    const graph = new Graph(g);
    graph.addNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['h'] });
    graph.addNode({ opType: 'Reshape', inputs: ['h', 'heads'], outputs: ['r'] });
    graph.addNode({ opType: 'ReduceMean', inputs: ['r'], outputs: ['m'], attrs: { axes: [-1], keepdims: 1 } });
    graph.addNode({ opType: 'ReduceSum', inputs: ['m'], outputs: ['loss'], attrs: { keepdims: 0 } });
    g.output.push(makeValueInfo('loss'));
    const m = model(g, 17);
    const shapes = await probeShapes(nodeRuntime, m);
    const { grads, backwardNodes } = buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes });
    // (The final ReduceSum reduces dynamic dims, so it reads Shape(m): that one is unavoidable.)
    const forward = new Set(['h', 'r']);
    const shapeReads = backwardNodes.filter((n) => (n.opType === 'Shape' || n.opType === 'Size') && forward.has(n.input[0]!));
    expect(shapeReads.map((n) => `${n.opType}(${n.input[0]})`)).toEqual([]);
    g.output = [makeValueInfo(grads.get('x')!)];
    const { session } = await createSession(encodeModel(m.proto));
    const want = Array.from({ length: 8 }, (_, i) => (w.slice(i * 6, i * 6 + 6).reduce((a, v) => a + v, 0)) / 3);
    for (const [batch, seq] of [[2, 3], [3, 5]] as const) {
      const x = new ort.Tensor('float32', randomValues(batch * seq * 8, 9), [batch, seq, 8]);
      const out = (await session.run({ x }))[grads.get('x')!]!;
      expect(out.dims).toEqual([batch, seq, 8]);
      const got = out.data as Float32Array;
      for (let k = 0; k < got.length; k++) expect(got[k]).toBeCloseTo(want[k % 8]!, 5);
    }
    await session.release();
  });
});

describe('shape probing with a real batch', () => {
  it('adds a synthetic run of other sizes, so dynamic axes are still found', async () => {
    const g = create(GraphProtoSchema, { name: 'p' });
    g.input.push(makeValueInfo('x', DT.FLOAT, ['batch', 4]));
    const graph = new Graph(g);
    graph.addNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] });
    g.output.push(makeValueInfo('y'));
    const shapes = await probeShapes(nodeRuntime, model(g), { batches: [{ x: new ort.Tensor('float32', new Float32Array(8), [2, 4]) }] });
    expect(shapes.get('y')!.shape).toEqual([null, 4]);
  });
});

describe('accumulation', () => {
  it('a value used twice by one node (Mul(x, x)) and by two nodes gets the sum: d/dx Σ(x·x + x) = 2x + 1', async () => {
    const g = create(GraphProtoSchema, { name: 'acc' });
    g.input.push(makeValueInfo('x', DT.FLOAT, [3]));
    const graph = new Graph(g);
    graph.addNode({ opType: 'Mul', inputs: ['x', 'x'], outputs: ['sq'] });
    graph.addNode({ opType: 'Add', inputs: ['sq', 'x'], outputs: ['s'] });
    graph.addNode({ opType: 'ReduceSum', inputs: ['s'], outputs: ['loss'], attrs: { keepdims: 0 } });
    g.output.push(makeValueInfo('loss'));
    const m = model(g);
    const x = new ort.Tensor('float32', Float32Array.from([0.5, -2, 3]), [3]);
    const shapes = await probeShapes(nodeRuntime, m, { batches: [{ x }, { x }] });
    const { grads, backwardNodes } = buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes });
    expect(backwardNodes.filter((n) => n.opType === 'Sum')).toHaveLength(1);
    g.output = [makeValueInfo(grads.get('x')!)];
    const { session } = await createSession(encodeModel(m.proto));
    const out = await session.run({ x });
    await session.release();
    expect(Array.from(out[grads.get('x')!]!.data as Float32Array)).toEqual([2, -3, 7]);
  });
});

/** x (param) -> MatMul(w) -> [op] -> ReduceSum -> loss; shapes given by hand. */
function chain(middle: { opType: string; domain?: string }): { graph: Graph; shapes: ShapeTable } {
  const g = create(GraphProtoSchema, { name: 'c' });
  g.input.push(makeValueInfo('x', DT.FLOAT, [2, 3]));
  g.initializer.push(floatTensor('w', [3, 3], randomValues(9, 2)));
  const graph = new Graph(g);
  graph.addNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['h'], name: 'mm' });
  graph.addNode({ opType: middle.opType, domain: middle.domain, inputs: ['h'], outputs: ['z'], name: 'odd' });
  graph.addNode({ opType: 'ReduceSum', inputs: ['z'], outputs: ['loss'], attrs: { keepdims: 0 }, name: 'sum' });
  const f = { dtype: DT.FLOAT, shape: [2, 3] };
  const shapes: ShapeTable = new Map([
    ['x', f],
    ['w', { dtype: DT.FLOAT, shape: [3, 3] }],
    ['h', f],
    ['z', f],
    ['loss', { dtype: DT.FLOAT, shape: [] }],
  ]);
  return { graph, shapes };
}

describe('unsupported ops', () => {
  it.each<[{ opType: string; domain?: string }]>([[{ opType: 'Hardmax' }], [{ opType: 'FrobnicateGrad', domain: 'com.example' }]])('EXPECTED FAILURE - %j on the path names op, node, path and fix', (middle) => {
    const { graph, shapes } = chain(middle);
    let err: unknown;
    try {
      buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PeanutError);
    const e = err as PeanutError;
    expect(e.code).toBe('E_UNSUPPORTED_OP');
    expect(e.message).toContain(`'${middle.opType}'`);
    expect(e.message).toContain(`node 'odd'`);
    expect(e.message).toContain(`'x' -> MatMul 'mm' -> ${middle.opType} 'odd'`);
    expect(e.message).toMatch(/different opset|un-fuse|report/);
    if (middle.domain) expect(e.message).toContain(middle.domain);
  });

  it('EXPECTED FAILURE - a path through a sequence value (not probed) fails loudly instead of being cut', async () => {
    const g = create(GraphProtoSchema, { name: 'seq' });
    g.input.push(makeValueInfo('x', DT.FLOAT, ['n', 4]));
    const graph = new Graph(g);
    graph.addNode({ opType: 'SplitToSequence', inputs: ['x'], outputs: ['parts'], attrs: { axis: 1 }, name: 'split' });
    graph.addNode({ opType: 'ConcatFromSequence', inputs: ['parts'], outputs: ['y'], attrs: { axis: 1 }, name: 'concat' });
    graph.addNode({ opType: 'ReduceSum', inputs: ['y'], outputs: ['loss'], attrs: { keepdims: 0 }, name: 'sum' });
    g.output.push(makeValueInfo('loss'));
    const shapes = await probeShapes(nodeRuntime, model(g));
    expect(shapes.has('parts')).toBe(false);
    expect(shapes.get('y')!.shape).toEqual([null, 4]);
    expect(() => buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes })).toThrow(/no gradient rule for op 'SplitToSequence'/);
  });

  it('EXPECTED FAILURE - a parameter read implicitly inside an If branch is not silently cut', () => {
    const g = create(GraphProtoSchema, { name: 'if' });
    g.input.push(makeValueInfo('x', DT.FLOAT, [2]), makeValueInfo('c', DT.BOOL, []));
    const branch = (op: string, out: string) => {
      const sg = create(GraphProtoSchema, { name: out });
      new Graph(sg).addNode({ opType: op, inputs: ['x'], outputs: [out] });
      sg.output.push(makeValueInfo(out, DT.FLOAT, [2]));
      return sg;
    };
    const graph = new Graph(g);
    graph.addNode({ opType: 'If', inputs: ['c'], outputs: ['y'], attrs: { then_branch: branch('Identity', 't'), else_branch: branch('Neg', 'e') }, name: 'branch' });
    graph.addNode({ opType: 'ReduceSum', inputs: ['y'], outputs: ['loss'], attrs: { keepdims: 0 }, name: 'sum' });
    const shapes: ShapeTable = new Map([
      ['x', { dtype: DT.FLOAT, shape: [2] }],
      ['c', { dtype: DT.BOOL, shape: [] }],
      ['y', { dtype: DT.FLOAT, shape: [2] }],
      ['loss', { dtype: DT.FLOAT, shape: [] }],
    ]);
    expect(() => buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes })).toThrow(/no gradient rule for op 'If' at If node 'branch', on the gradient path 'x' -> If 'branch'/);
  });

  it('an op without a rule off the gradient path is fine', () => {
    const { graph, shapes } = chain({ opType: 'Relu' });
    graph.addNode({ opType: 'Hardmax', inputs: ['w'], outputs: ['unused'], name: 'side' });
    shapes.set('unused', { dtype: DT.FLOAT, shape: [3, 3] });
    const { grads, pathNodes } = buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes });
    expect(grads.has('x')).toBe(true);
    expect(pathNodes.map((n) => n.name)).toEqual(['mm', 'odd', 'sum']);
  });

  it('EXPECTED FAILURE - a parameter that does not reach the loss', () => {
    const { graph, shapes } = chain({ opType: 'Relu' });
    graph.proto.input.push(makeValueInfo('y', DT.FLOAT, [2]));
    shapes.set('y', { dtype: DT.FLOAT, shape: [2] });
    expect(() => buildGradients({ graph, opset: 17, loss: 'loss', params: ['x', 'y'], shapes })).toThrow(/'y'.*does not reach the loss/);
  });

  it.each([
    ['type', (b: GraphBuilder, dY: string) => b.op('Cast', [dY], { to: DT.DOUBLE }), /Relu node 'odd', input 0 \('h'\) returned '.*' of type float64, expected float32/],
    ['rank', (b: GraphBuilder, dY: string) => b.op('Mul', [dY, b.constFloat([1, 1, 1], [1, 1, 3])]), /Relu node 'odd', input 0 \('h'\) returned '.*' of rank 3, expected rank 2/],
  ] as const)('EXPECTED FAILURE - a rule returning a gradient of the wrong %s is named', (_what, make, message) => {
    const { graph, shapes } = chain({ opType: 'Relu' });
    const registry = createRegistry([...RULES.filter((r) => r.opType !== 'Relu'), { opType: 'Relu', grad: (ctx) => [make(ctx.b, ctx.GO(0)!)] }]);
    expect(() => buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes, registry })).toThrow(message);
  });

  it('EXPECTED FAILURE - a rule that returns no gradient for a needed input is named', () => {
    const { graph, shapes } = chain({ opType: 'Relu' });
    const registry = createRegistry([...RULES.filter((r) => r.opType !== 'Relu'), { opType: 'Relu', grad: () => [] }]);
    expect(() => buildGradients({ graph, opset: 17, loss: 'loss', params: ['x'], shapes, registry })).toThrow(/Relu node 'odd', input 0 \('h'\) returned no gradient/);
  });
});

// ---- loss heads against JS references ------------------------------------------------------------

function softmaxRows(x: number[], C: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; i += C) {
    const row = x.slice(i, i + C);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / s));
  }
  return out;
}

interface HeadCase {
  task: Task;
  dims: number[];
  labels: TensorLike;
  /** loss and d loss / d logits */
  reference(x: number[]): { loss: number; grad: number[] };
}

const ceRef = (C: number, targets: number[]) => (x: number[]) => {
  const p = softmaxRows(x, C);
  const counted = targets.filter((t) => t !== -100).length;
  let loss = 0;
  const grad = new Array<number>(x.length).fill(0);
  targets.forEach((t, r) => {
    if (t === -100) return;
    loss -= Math.log(p[r * C + t]!);
    for (let c = 0; c < C; c++) grad[r * C + c] = (p[r * C + c]! - (c === t ? 1 : 0)) / counted;
  });
  return { loss: loss / counted, grad };
};

const HEADS: Array<[string, HeadCase]> = [
  ['seq-cls', { task: 'seq-cls', dims: [3, 4], labels: new ort.Tensor('int64', BigInt64Array.from([2n, 0n, 3n]), [3]), reference: ceRef(4, [2, 0, 3]) }],
  ['seq-cls with an ignored label', { task: 'seq-cls', dims: [3, 4], labels: new ort.Tensor('int64', BigInt64Array.from([2n, -100n, 3n]), [3]), reference: ceRef(4, [2, -100, 3]) }],
  ['image-cls', { task: 'image-cls', dims: [2, 5], labels: new ort.Tensor('int64', BigInt64Array.from([4n, 1n]), [2]), reference: ceRef(5, [4, 1]) }],
  [
    'causal-lm (shift, -100 padding)',
    {
      task: 'causal-lm',
      dims: [2, 4, 6],
      // labels[b, t+1] is the target of position t; -100 at padding; the last position has none
      labels: new ort.Tensor('int64', BigInt64Array.from([1n, 5n, 2n, 3n, 4n, 0n, -100n, -100n]), [2, 4]),
      reference: ceRef(6, [5, 2, 3, -100, 0, -100, -100, -100]),
    },
  ],
  [
    'regression [B, 2]',
    {
      task: 'regression',
      dims: [3, 2],
      labels: new ort.Tensor('float32', Float32Array.from([0.5, -1, 2, 0, 1, 1]), [3, 2]),
      reference: (x) => {
        const y = [0.5, -1, 2, 0, 1, 1];
        const d = x.map((v, i) => v - y[i]!);
        return { loss: d.reduce((a, v) => a + v * v, 0) / d.length, grad: d.map((v) => (2 * v) / d.length) };
      },
    },
  ],
  [
    'regression [B] labels, [B, 1] logits',
    {
      task: 'regression',
      dims: [3, 1],
      labels: new ort.Tensor('float32', Float32Array.from([0.5, -1, 2]), [3]),
      reference: (x) => {
        const y = [0.5, -1, 2];
        const d = x.map((v, i) => v - y[i]!);
        return { loss: d.reduce((a, v) => a + v * v, 0) / d.length, grad: d.map((v) => (2 * v) / d.length) };
      },
    },
  ],
];

describe('loss heads', () => {
  it.each(HEADS)('%s: loss and d loss/d logits match a JS reference', async (_l, c) => {
    const g = create(GraphProtoSchema, { name: 'head' });
    const symbolic = c.dims.map((d, i) => (i === 0 ? 'batch_size' : i === 1 && c.dims.length === 3 ? 'sequence_length' : d));
    g.input.push(makeValueInfo('z', DT.FLOAT, symbolic));
    const graph = new Graph(g);
    graph.addNode({ opType: 'Identity', inputs: ['z'], outputs: ['logits'] });
    g.output.push(makeValueInfo('logits', DT.FLOAT, symbolic));
    const head = appendLossHead(graph, { task: c.task, opset: 17 });
    expect(head.predictions).toEqual(['logits']);
    const x = randomValues(c.dims.reduce((a, b) => a * b, 1), 3, -2, 2);
    const feeds = { z: new ort.Tensor('float32', Float32Array.from(x), c.dims), [head.labels[0]!.name]: c.labels };
    const m = model(g);
    const shapes = await probeShapes(nodeRuntime, m, { batches: [feeds] });
    const { grads } = buildGradients({ graph, opset: 17, loss: head.loss, params: ['z'], shapes });
    g.output = [makeValueInfo(head.loss), makeValueInfo(grads.get('z')!)];
    const { session } = await createSession(encodeModel(m.proto));
    const out = await session.run(feeds);
    await session.release();
    const want = c.reference(x);
    expect((out[head.loss]!.data as Float32Array)[0]).toBeCloseTo(want.loss, 5);
    const got = Array.from(out[grads.get('z')!]!.data as Float32Array);
    got.forEach((v, i) => expect(v, `d/dz[${i}]`).toBeCloseTo(want.grad[i]!, 5));
  });

  it('EXPECTED FAILURE - no logits output and no --head lists the graph outputs', () => {
    const g = create(GraphProtoSchema, { name: 'x' });
    g.input.push(makeValueInfo('z', DT.FLOAT, [2, 2]));
    const graph = new Graph(g);
    graph.addNode({ opType: 'Identity', inputs: ['z'], outputs: ['a'] });
    graph.addNode({ opType: 'Identity', inputs: ['z'], outputs: ['b'] });
    g.output.push(makeValueInfo('a'), makeValueInfo('b'));
    expect(() => appendLossHead(graph, { task: 'seq-cls', opset: 17 })).toThrow(/no output named 'logits'; its graph outputs are 'a', 'b'; pass --head NAME/);
    expect(() => appendLossHead(graph, { task: 'seq-cls', opset: 17, heads: ['nope'] })).toThrow(/'nope' is not a value.*'a', 'b'/);
    expect(appendLossHead(graph, { task: 'seq-cls', opset: 17, heads: ['b'] }).predictions).toEqual(['b']);
  });
});
