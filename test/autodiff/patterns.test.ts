/**
 * Decomposed LayerNorm and exact GELU (as exports below opset 17 / 20 write them) differentiated
 * as the op they spell (src/autodiff/patterns.ts): the gradients equal the node-by-node ones
 * (each of those rules is checked by finite differences in rules-math.test.ts) at two batch
 * sizes, the backward reads none of the pattern's intermediates (so they can be freed and the
 * forward fused), and near misses are left to the node-by-node rules.
 */
import { describe, expect, it } from 'vitest';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema, type NodeProto } from '../../src/onnx/proto.ts';
import { nodeRuntime, createSession, ort } from '../../src/node/onnxruntime.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { randomValues } from '../helpers/gradcheck.ts';

const C = 6;
type Dt = typeof DT.FLOAT | typeof DT.DOUBLE;

interface Variant {
  /** Emits the forward from x (and γ, β) to the output named `y`; returns the intermediates it wrote. */
  emit: (b: GraphBuilder, k: (v: number) => string, x: string, y: string) => void;
  /** Whether the pattern is one the backward should spell (documentation of the case). */
  spelled: boolean;
  /** Extra graph outputs, picked from the forward nodes (to make an intermediate escape the pattern). */
  alsoOutput?: (nodes: readonly NodeProto[]) => string[];
  dtype?: Dt;
  opset?: number;
}

const mean = (b: GraphBuilder, v: string, axes: number[], opset: number) => (opset >= 18 ? b.op('ReduceMean', [v, b.constInt64(axes)]) : b.op('ReduceMean', [v], { axes }));

function layerNorm(opts: { square?: 'pow' | 'mul'; gamma?: boolean; beta?: boolean; axes?: number[]; swap?: boolean; eps?: number; opset?: number; castBeforeSquare?: number; subTwice?: boolean } = {}): Variant['emit'] {
  const opset = opts.opset ?? 14;
  return (b, k, x, y) => {
    const axes = opts.axes ?? [-1];
    const mu = mean(b, x, axes, opset);
    const d = b.op('Sub', [x, mu]);
    // GPT-2's export casts x − μ to its own type before squaring; some write x − μ twice.
    const e = opts.castBeforeSquare !== undefined ? b.op('Cast', [d], { to: opts.castBeforeSquare }) : opts.subTwice ? b.op('Sub', [x, mu], {}, { name: 'again' }) : d;
    const sq = opts.square === 'mul' ? b.op('Mul', [e, e]) : b.op('Pow', [e, k(2)]);
    const eps = k(opts.eps ?? 1e-5);
    const std = b.op('Sqrt', [b.op('Add', opts.swap ? [eps, mean(b, sq, axes, opset)] : [mean(b, sq, axes, opset), eps])]);
    let out = b.op('Div', [d, std]);
    const last = !opts.gamma && !opts.beta;
    if (opts.gamma) out = b.opN('Mul', opts.swap ? ['gamma', out] : [out, 'gamma'], {}, { outputs: opts.beta ? 1 : [y] })[0]!;
    if (opts.beta) out = b.opN('Add', opts.swap ? ['beta', out] : [out, 'beta'], {}, { outputs: [y] })[0]!;
    if (last) b.opN('Identity', [out], {}, { outputs: [y] });
  };
}

/** tf2onnx's LayerNorm ("batchnorm" form): m = γ / σ, y = x·m + (β − μ·m). */
function tfLayerNorm(opts: { gamma?: boolean } = {}): Variant['emit'] {
  return (b, k, x, y) => {
    const mu = mean(b, x, [-1], 14);
    const d = b.op('Sub', [x, mu]);
    const r = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b, b.op('Mul', [d, d]), [-1], 14), k(1e-12)])])]);
    const m = opts.gamma ? b.op('Mul', [r, 'gamma']) : r;
    b.opN('Add', [b.op('Mul', [x, m]), b.op('Sub', ['beta', b.op('Mul', [mu, m])])], {}, { outputs: [y] });
  };
}

function gelu(form: 'torch' | 'half-first' | 'x-last' | 'mul-inv-sqrt2' | 'tanh' | 'tf', half = 0.5): Variant['emit'] {
  return (b, k, x, y) => {
    const c = (scaled: string) => b.op('Add', [b.op('Erf', [scaled]), k(1)]);
    // Hugging Face's gelu_new as exported: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    if (form === 'tanh') {
      const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [b.op('Pow', [x, k(3)]), k(0.044715)])]), k(Math.sqrt(2 / Math.PI))]);
      b.opN('Mul', [b.op('Mul', [x, k(half)]), b.op('Add', [b.op('Tanh', [inner]), k(1)])], {}, { outputs: [y] });
    }
    if (form === 'torch') b.opN('Mul', [b.op('Mul', [x, c(b.op('Div', [x, k(Math.SQRT2)]))]), k(half)], {}, { outputs: [y] });
    if (form === 'half-first') b.opN('Mul', [b.op('Mul', [x, k(half)]), c(b.op('Div', [x, k(Math.SQRT2)]))], {}, { outputs: [y] });
    if (form === 'x-last') b.opN('Mul', [b.op('Mul', [k(half), c(b.op('Div', [x, k(Math.SQRT2)]))]), x], {}, { outputs: [y] });
    // tf2onnx: x / Sqrt(2) with √2 computed by a Sqrt node, ½ applied to (1 + erf) first
    if (form === 'tf') b.opN('Mul', [x, b.op('Mul', [k(half), b.op('Add', [k(1), b.op('Erf', [b.op('Div', [x, b.op('Sqrt', [k(2)])])])])])], {}, { outputs: [y] });
    if (form === 'mul-inv-sqrt2') b.opN('Mul', [k(half), b.op('Mul', [c(b.op('Mul', [k(Math.SQRT1_2), x])), x])], {}, { outputs: [y] });
  };
}

/**
 * x [batch, seq, C] (the parameter) → pattern → y; loss = Σ y·R. Returns dL/dx (and γ, β) at
 * two sizes, with and without spelled ops, and the forward values the backward reads.
 */
async function differentiate(v: Variant, spelledOps: boolean) {
  const dt = v.dtype ?? DT.DOUBLE;
  const opset = v.opset ?? 14;
  const ty = dt === DT.DOUBLE ? 'float64' : 'float32';
  const g = create(GraphProtoSchema, { name: 'p' });
  g.input.push(makeValueInfo('x', dt, ['batch', 'seq', C]), makeValueInfo('R', dt, ['batch', 'seq', C]), makeValueInfo('gamma', dt, [C]), makeValueInfo('beta', dt, [C]));
  const graph = new Graph(g);
  const b = new GraphBuilder(graph, '/f');
  const k = (value: number) => (dt === DT.DOUBLE ? b.constDouble([value]) : b.scalar(value));
  v.emit(b, k, 'x', 'y');
  const extra = v.alsoOutput?.(g.node) ?? [];
  graph.addNode({ opType: 'Mul', inputs: ['y', 'R'], outputs: ['yR'] });
  graph.addNode({ opType: 'ReduceSum', inputs: ['yR'], outputs: ['L'], attrs: { keepdims: 0 } });
  g.output.push(makeValueInfo('L'), ...extra.map((e) => makeValueInfo(e)));
  const model = { proto: create(ModelProtoSchema, { irVersion: 8n, graph: g, opsetImport: [{ domain: '', version: BigInt(opset) }] }), baseDir: '.' };
  const tensor = (vals: number[], dims: number[]) => new ort.Tensor(ty, dt === DT.DOUBLE ? Float64Array.from(vals) : Float32Array.from(vals), dims);
  const feeds = (batch: number, seq: number, seed: number) => ({
    x: tensor(randomValues(batch * seq * C, seed, -2, 2), [batch, seq, C]),
    R: tensor(randomValues(batch * seq * C, seed + 1), [batch, seq, C]),
    gamma: tensor(randomValues(C, seed + 2, 0.5, 1.5), [C]),
    beta: tensor(randomValues(C, seed + 3), [C]),
  });
  const shapes = await probeShapes(nodeRuntime, model, { batches: [feeds(2, 3, 1), feeds(3, 5, 5)] });
  const params = ['x', 'gamma', 'beta'].filter((p) => g.node.some((n) => n.input.includes(p)));
  const forwardNodes = [...g.node];
  const built = buildGradients({ graph, opset, loss: 'L', params, shapes, spelledOps });
  const forwardValues = new Set(forwardNodes.flatMap((n) => n.output));
  const read = new Set(built.backwardNodes.flatMap((n) => n.input).filter((i) => forwardValues.has(i)));
  g.output = params.map((p) => makeValueInfo(built.grads.get(p)!));
  const { session } = await createSession(encodeModel(model.proto));
  const grads: number[][] = [];
  for (const [batch, seq, seed] of [[2, 3, 11], [4, 7, 21]] as const) {
    const out = await session.run(feeds(batch, seq, seed));
    for (const p of params) grads.push(Array.from(out[built.grads.get(p)!]!.data as Float64Array));
  }
  await session.release();
  return { grads, read, backwardOps: built.backwardNodes.map((n) => n.opType) };
}

async function check(v: Variant) {
  const spelled = await differentiate(v, true);
  const plain = await differentiate(v, false);
  const tol = (v.dtype ?? DT.DOUBLE) === DT.DOUBLE ? 1e-10 : 2e-5;
  expect(spelled.grads.length).toBe(plain.grads.length);
  spelled.grads.forEach((gr, i) => {
    const ref = plain.grads[i]!;
    const scale = Math.max(1, ...ref.map(Math.abs));
    const err = Math.max(...gr.map((x, j) => Math.abs(x - ref[j]!)));
    expect(err, `gradient ${i}`).toBeLessThanOrEqual(tol * scale);
  });
  return { spelled, plain };
}

/**
 * Values a backward may read of the forward when the pattern is spelled: its input, γ, β, and the
 * loss's own product (the loss sums over dynamic dims, so its backward reads that one's shape).
 */
const allowed = new Set(['x', 'gamma', 'beta', 'R', 'yR']);

describe('decomposed LayerNorm, differentiated as LayerNormalization', () => {
  it.each<[string, Parameters<typeof layerNorm>[0]]>([
    ['γ and β (PyTorch export, opset 14)', { gamma: true, beta: true }],
    ['operands swapped, Mul(d, d) for the square', { gamma: true, beta: true, swap: true, square: 'mul' }],
    ['no γ, no β', {}],
    ['β only', { beta: true }],
    ['over the last two axes', { gamma: true, beta: true, axes: [1, 2] }],
    ['ReduceMean axes as an input (opset 18)', { gamma: true, beta: true, opset: 18 }],
    ['x − μ cast to its own type before squaring (GPT-2)', { gamma: true, beta: true, castBeforeSquare: DT.DOUBLE }],
    ['x − μ written twice', { gamma: true, beta: true, subTwice: true }],
  ])('%s: same gradients, no intermediate read by the backward', async (_label, o) => {
    const { spelled, plain } = await check({ emit: layerNorm(o), spelled: true, ...(o?.opset ? { opset: o.opset } : {}) });
    expect([...spelled.read].filter((r) => !allowed.has(r))).toEqual([]);
    expect([...plain.read].some((r) => !allowed.has(r))).toBe(true);
  });

  it.each([true, false])('tf2onnx spelling (γ: %s): same gradients, no intermediate read by the backward', async (gamma) => {
    const { spelled, plain } = await check({ emit: tfLayerNorm({ gamma }), spelled: true });
    expect([...spelled.read].filter((r) => !allowed.has(r))).toEqual([]);
    expect([...plain.read].some((r) => !allowed.has(r))).toBe(true);
  });

  it('float32 at opset 17', async () => {
    const { spelled } = await check({ emit: layerNorm({ gamma: true, beta: true }), spelled: true, dtype: DT.FLOAT, opset: 17 });
    expect([...spelled.read].filter((r) => !allowed.has(r))).toEqual([]);
  });

  it.each<[string, Variant]>([
    ['x − μ also a graph output', { emit: layerNorm({ gamma: true, beta: true }), spelled: false, alsoOutput: (nodes) => [nodes.find((n) => n.opType === 'Sub')!.output[0]!] }],
    ['mean over a leading axis', { emit: layerNorm({ gamma: true, beta: true, axes: [1] }), spelled: false }],
    ['ε = 0 (not a LayerNorm epsilon)', { emit: layerNorm({ gamma: true, beta: true, eps: 0 }), spelled: false }],
  ])('near miss left node by node: %s', async (_label, v) => {
    const { spelled } = await check(v);
    expect([...spelled.read].some((r) => !allowed.has(r))).toBe(true);
  });
});

describe('decomposed GELU (erf and tanh forms), differentiated as Gelu', () => {
  it.each(['torch', 'half-first', 'x-last', 'mul-inv-sqrt2', 'tanh', 'tf'] as const)('%s form: same gradients, the backward reads x only', async (form) => {
    const { spelled, plain } = await check({ emit: gelu(form), spelled: true, dtype: DT.FLOAT });
    expect([...spelled.read].filter((r) => !allowed.has(r))).toEqual([]);
    expect([...plain.read].some((r) => !allowed.has(r))).toBe(true);
  });

  it('near miss (0.6 instead of ½) left node by node', async () => {
    const { spelled } = await check({ emit: gelu('torch', 0.6), spelled: false, dtype: DT.FLOAT });
    expect([...spelled.read].some((r) => !allowed.has(r))).toBe(true);
  });
});
