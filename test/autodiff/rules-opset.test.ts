/**
 * Every registered rule at the lowest opset its op exists in. `FIRST` knows, for each op, the
 * opset that introduced it (the ONNX operator changelog) and, where later, the lowest opset at
 * which ONNX Runtime 1.30's CPU EP runs it (its kernels start there; a test below proves ORT
 * refuses the op one opset lower), with the element type ORT needs there. Every existing
 * finite-difference case of the op (cases-*.ts) is rewritten for that opset (opset-cases.ts:
 * axes inputs back to attributes, …; a case using what the old opset lacks is left out, and each
 * op keeps at least one case) and checked there. Below opset 7 the backward graph is built at 7
 * with the model's import raised (opset-raise.ts), which the check asserts.
 *
 * The com.microsoft ops do not depend on the default-domain opset, but their rules emit
 * default-domain ops: they run at opset 7, the lowest a backward graph is built at, as do ONNX
 * Runtime's default-domain LayerNormalization and SimplifiedLayerNormalization, which its CPU EP
 * accepts at any opset (their ONNX counterparts came at 17 and 23).
 *
 * float64 cases stay float64 where ORT has the double kernel at that opset; `float32: true` marks
 * the ops whose double kernel comes later (the case then runs in float32: eps 1e-2, tolerance
 * 2e-3 absolute + relative).
 */
import { describe, expect, it } from 'vitest';
import { float, type AttrValue } from '../../src/onnx/attributes.ts';
import { Graph } from '../../src/onnx/graph.ts';
import { create, GraphProtoSchema } from '../../src/onnx/proto.ts';
import { gradientOpset } from '../../src/autodiff/opset-raise.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { RULES } from '../../src/autodiff/rules/index.ts';
import { buildOpModel, gradCheck, randomValues, withComposed, type GradCheckCase } from '../helpers/gradcheck.ts';
import { atOpset } from '../helpers/opset-cases.ts';
import { MATH_CASES } from './cases-math.ts';
import { SHAPE_CASES } from './cases-shape.ts';
import { FUSED_CASES } from './cases-fused.ts';
import { ATTENTION_CASES } from './cases-attention.ts';

interface First {
  /** The opset the op was introduced in (for com.microsoft ops: the default-domain opset used). */
  spec: number;
  /** Lowest opset ONNX Runtime 1.30's CPU EP runs the op at, where later than `spec`. */
  ort?: number;
  /**
   * ORT has only the float32 kernel there: float64 cases run in float32. (MaxPool instead runs its
   * float64 cases from ORT's double kernel at 8; its float32 kernel at opset 1 is checked by the
   * 'MaxPool-1' case of cases-shape.ts, whose values stay clear of ties.)
   */
  float32?: boolean;
  /**
   * Where the rule needs a newer opset than the op (an op it emits has no older equivalent): it
   * refuses below with E_UNSUPPORTED_OP naming this opset (checked), and the cases run here.
   */
  gradientFrom?: number;
}

const FIRST: Record<string, First> = {
  Abs: { spec: 1, ort: 6 }, Add: { spec: 1, ort: 7 }, AveragePool: { spec: 1, ort: 7 }, BatchNormalization: { spec: 1, ort: 7 },
  Cast: { spec: 1, ort: 6 }, Celu: { spec: 12 }, Clip: { spec: 1, ort: 6, float32: true }, Concat: { spec: 1, ort: 4 },
  Conv: { spec: 1 }, ConvTranspose: { spec: 1 }, Cos: { spec: 7 }, CumSum: { spec: 11 }, DepthToSpace: { spec: 1 },
  Div: { spec: 1, ort: 7 }, Dropout: { spec: 1, ort: 7 }, Einsum: { spec: 12 }, Elu: { spec: 1, ort: 6 }, Erf: { spec: 9 },
  Exp: { spec: 1, ort: 6 }, Expand: { spec: 8 }, Flatten: { spec: 1 }, Gather: { spec: 1 }, GatherElements: { spec: 11 },
  GatherND: { spec: 11 }, Gelu: { spec: 20 }, Gemm: { spec: 1, ort: 7 }, GlobalAveragePool: { spec: 1 }, GlobalMaxPool: { spec: 1 },
  GroupNormalization: { spec: 18 }, HardSigmoid: { spec: 1, ort: 6 }, HardSwish: { spec: 14 }, Identity: { spec: 1 },
  InstanceNormalization: { spec: 1, ort: 6 }, LayerNormalization: { spec: 7 }, LeakyRelu: { spec: 1, ort: 6, float32: true },
  Log: { spec: 1, ort: 6 }, LogSoftmax: { spec: 1 }, MatMul: { spec: 1 }, Max: { spec: 1, ort: 6, float32: true }, MaxPool: { spec: 1, ort: 8 },
  Mean: { spec: 1, ort: 6 }, Min: { spec: 1, ort: 6, float32: true }, Mish: { spec: 18 }, Mul: { spec: 1, ort: 7 }, Neg: { spec: 1, ort: 6 },
  PRelu: { spec: 1, ort: 7 }, Pad: { spec: 1, ort: 2 }, Pow: { spec: 1, ort: 7 }, RMSNormalization: { spec: 23 },
  Reciprocal: { spec: 1, ort: 6 }, ReduceL1: { spec: 1 }, ReduceL2: { spec: 1 }, ReduceLogSum: { spec: 1 }, ReduceLogSumExp: { spec: 1 },
  ReduceMax: { spec: 1 }, ReduceMean: { spec: 1 }, ReduceMin: { spec: 1 }, ReduceProd: { spec: 1 }, ReduceSum: { spec: 1 },
  ReduceSumSquare: { spec: 1 }, Relu: { spec: 1, ort: 6 }, Reshape: { spec: 1, ort: 5 }, ScatterElements: { spec: 11 },
  ScatterND: { spec: 11 }, Selu: { spec: 1, ort: 6 }, Sigmoid: { spec: 1, ort: 6 }, SimplifiedLayerNormalization: { spec: 7 },
  Sin: { spec: 7 }, Slice: { spec: 1 }, Softmax: { spec: 1 }, Softplus: { spec: 1 }, Softsign: { spec: 1 }, SpaceToDepth: { spec: 1 },
  Split: { spec: 1, ort: 2 }, Sqrt: { spec: 1, ort: 6 }, Squeeze: { spec: 1 }, Sub: { spec: 1, ort: 7 }, Sum: { spec: 1, ort: 6 },
  Tanh: { spec: 1, ort: 6 }, ThresholdedRelu: { spec: 10 }, Tile: { spec: 1, ort: 6 }, TopK: { spec: 1 }, Transpose: { spec: 1 },
  Trilu: { spec: 14 }, Unsqueeze: { spec: 1 }, Where: { spec: 9 },
  // com.microsoft (and ORT's default-domain LayerNormalization/SimplifiedLayerNormalization above): opset 7
  'com.microsoft:BiasAdd': { spec: 7 }, 'com.microsoft:BiasGelu': { spec: 7, gradientFrom: 9 }, 'com.microsoft:EmbedLayerNormalization': { spec: 7 },
  'com.microsoft:FastGelu': { spec: 7 }, 'com.microsoft:FusedMatMul': { spec: 7 }, 'com.microsoft:Gelu': { spec: 7, gradientFrom: 9 },
  'com.microsoft:GemmFastGelu': { spec: 7 }, 'com.microsoft:QuickGelu': { spec: 7 }, 'com.microsoft:SkipLayerNormalization': { spec: 7 },
  'com.microsoft:SkipSimplifiedLayerNormalization': { spec: 7 },
  // The attention ops' gradients are written for opset 11 (masks and positions from Range,
  // ConstantOfShape, input-form Slice): below it they refuse, naming it (ATTENTION_MIN_OPSET).
  'com.microsoft:Attention': { spec: 7, gradientFrom: 11 }, 'com.microsoft:MultiHeadAttention': { spec: 7, gradientFrom: 11 },
  'com.microsoft:GroupQueryAttention': { spec: 7, gradientFrom: 11 }, 'com.microsoft:RotaryEmbedding': { spec: 7 },
  // The attention family of the default domain.
  Attention: { spec: 23 }, RotaryEmbedding: { spec: 23 }, TensorScatter: { spec: 24 },
};

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Cases for opsets where every existing case uses something newer (Max/Min/Mean/Sum broadcast from 8). */
const EXTRA: Array<[string, GradCheckCase]> = [
  ['Max of two, same shapes', { op: 'Max', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [2, 3] }] }],
  ['Min of three, same shapes', { op: 'Min', inputs: [{ name: 'a', dims: [3, 2] }, { name: 'b', dims: [3, 2] }, { name: 'c', dims: [3, 2] }] }],
  ['Mean of two, same shapes (float32)', { op: 'Mean', dtype: 'float32', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [2, 3] }] }],
  ['Sum of two, same shapes', { op: 'Sum', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [2, 3] }] }],
  ['PRelu slope [1]', { op: 'PRelu', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 3], values: (d) => randomValues(numel(d), 24, -1, 1, [0], 0.05) }, { name: 'slope', dims: [1] }] }],
  ['Concat of static pieces', { op: 'Concat', attrs: { axis: 1 }, inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [2, 2] }] }],
  ['Gather of a static table, repeated indices', { op: 'Gather', attrs: { axis: 0 }, inputs: [{ name: 'data', dims: [4, 3] }, { name: 'idx', dims: [5], type: 'int64', constant: true, values: [0, 3, 0, 1, 3] }] }],
  ['TopK of static rows', { op: 'TopK', outputs: 2, skipOutputs: [1], attrs: { axis: 1 }, inputs: [{ name: 'x', dims: [3, 5] }, { name: 'k', dims: [1], type: 'int64', constant: true, values: [2] }] }],
  ['Clip attribute bounds (float32)', { op: 'Clip', opset: 10, dtype: 'float32', attrs: { min: float(-0.4), max: float(0.5) }, inputs: [{ name: 'x', dims: [3, 4], values: (d) => randomValues(numel(d), 8, -1, 1, [-0.4, 0.5], 0.05) }] }],
];

const keyOf = (c: GradCheckCase) => (c.domain ? `${c.domain}:${c.op}` : c.op);
/** A case of a later revision of its op than the first (ONNX Attention-24's inputs): it runs at its own opset in its own file. */
const isLaterRevision = (c: GradCheckCase) => !c.domain && c.opset !== undefined && FIRST[c.op] !== undefined && c.opset > FIRST[c.op]!.spec && c.opset >= 23;
const ALL: Array<[string, GradCheckCase]> = [...MATH_CASES, ...SHAPE_CASES.map(([l, c]) => [l, c] as [string, GradCheckCase]), ...FUSED_CASES, ...ATTENTION_CASES.filter(([, c]) => !isLaterRevision(c)), ...EXTRA];

/** Each case at its op's first opset, or why it cannot be written there. */
const LOWERED = ALL.map(([label, c]) => {
  const f = FIRST[keyOf(c)];
  if (!f) return { label, key: keyOf(c), opset: NaN, lowered: 'no FIRST entry' as const, typed: c };
  const opset = Math.max(f.spec, f.ort ?? 0, f.gradientFrom ?? 0);
  const typed: GradCheckCase = f.float32 && (c.dtype ?? 'float64') === 'float64' ? { ...c, dtype: 'float32' } : c;
  return { label, key: keyOf(c), opset, lowered: atOpset(typed, opset), typed };
});
const RUNNABLE = LOWERED.filter((l): l is typeof l & { lowered: GradCheckCase } => typeof l.lowered !== 'string');

/** Ops with at least one case that passed at their FIRST opset (checked by the last test). */
const passedAtFirst = new Set<string>();

describe('every rule at the lowest opset its op exists in (finite differences through onnxruntime)', () => {
  it('knows the first opset of every registered rule', () => {
    const registered = RULES.map((r) => (r.domain ? `${r.domain}:${r.opType}` : r.opType));
    expect(registered.filter((k) => !FIRST[k])).toEqual([]);
  });

  // A case may need something the rule can only emit at a newer opset (a run-time size where the
  // old form takes constants): the rule must then refuse with E_UNSUPPORTED_OP naming that opset,
  // and the case must pass there.
  it.each(RUNNABLE.map((l) => [`${l.key}-${l.opset}: ${l.label}`, l] as const))('%s', async (_label, l) => {
    const check = async (c: GradCheckCase, opset: number) => {
      const r = await gradCheck(c);
      expect(r.opset).toBe(Math.max(opset, 7));
      expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
      if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
    };
    // Refusals must name an opset above the one tried; the case then runs there (possibly
    // refused again, for a further form, until it passes).
    let c = l.lowered;
    let opset = l.opset;
    for (;;) {
      try {
        await check(c, opset);
        if (opset === l.opset) passedAtFirst.add(l.key);
        return;
      } catch (err) {
        const m = /needs opset (\d+)/.exec((err as Error).message);
        if ((err as { code?: string }).code !== 'E_UNSUPPORTED_OP' || !m) throw err;
        const needs = Number(m[1]);
        expect(needs).toBeGreaterThan(Math.max(opset, 7));
        const there = atOpset(l.typed, needs);
        if (typeof there === 'string') throw new Error(`refused below opset ${needs}, and cannot be written there: ${there}`);
        [c, opset] = [there, needs];
      }
    }
  });

  it('passed at least one case of every registered rule at its first opset', () => {
    const registered = RULES.map((r) => (r.domain ? `${r.domain}:${r.opType}` : r.opType));
    expect(registered.filter((k) => !passedAtFirst.has(k))).toEqual([]);
  });
});

describe('rules that need a newer opset than their op', () => {
  const later = Object.entries(FIRST).filter(([, f]) => f.gradientFrom !== undefined);
  it.each(later.map(([key, f]) => [key, f] as const))('EXPECTED FAILURE - %s below its gradientFrom opset', async (key, f) => {
    const l = RUNNABLE.find((x) => x.key === key)!;
    const below = Math.max(f.spec, f.ort ?? 0);
    const c = atOpset(l.typed, below);
    if (typeof c === 'string') throw new Error(`${key}: ${c}`);
    await expect(gradCheck(c)).rejects.toMatchObject({ code: 'E_UNSUPPORTED_OP', message: expect.stringMatching(new RegExp(`needs opset ${f.gradientFrom}`)) });
  });
});

describe("ONNX Runtime's lowest opsets in FIRST", () => {
  // One case per op whose ORT kernel starts later than the op: ORT refuses it an opset lower.
  const later = Object.entries(FIRST).filter(([, f]) => f.ort !== undefined && f.ort > f.spec);
  it.each(later.map(([key, f]) => [key, f] as const))('EXPECTED FAILURE - %s one opset below its ORT kernel', async (key, f) => {
    const l = RUNNABLE.find((x) => x.key === key)!;
    const below = atOpset(l.lowered, f.ort! - 1);
    if (typeof below === 'string') throw new Error(`${key}: ${below}`);
    let m = buildOpModel(below, (inp, dims) => (typeof inp.values === 'function' ? inp.values(dims, false) : inp.values ? [...inp.values] : randomValues(numel(dims), 3)));
    if (below.runComposed) m = withComposed(m, below);
    await expect(ort.InferenceSession.create(encodeModel(m))).rejects.toThrow();
  });
});

describe('raising an import below opset 7 (opset-raise.ts)', () => {
  const graphOf = (nodes: Array<{ op: string; domain?: string; sub?: string }>) => {
    const g = create(GraphProtoSchema, { name: 'g' });
    const graph = new Graph(g);
    for (const [i, n] of nodes.entries()) {
      const attrs: Record<string, AttrValue> = {};
      if (n.sub) {
        const body = create(GraphProtoSchema, { name: 'body' });
        new Graph(body).addNode({ opType: n.sub, inputs: ['a', 'b'], outputs: ['c'], name: 'inner' });
        attrs['then_branch'] = body;
        attrs['else_branch'] = body;
      }
      graph.addNode({ opType: n.op, domain: n.domain, inputs: ['x'], outputs: [`y${i}`], attrs, name: `n${i}_${n.op}` });
    }
    return g;
  };

  it('raises to 7 when every node resolves to the same version there', () => {
    expect(gradientOpset(graphOf([{ op: 'Relu' }, { op: 'MatMul' }, { op: 'Softmax' }, { op: 'Attention', domain: 'com.microsoft' }]), 6)).toBe(7);
    expect(gradientOpset(graphOf([{ op: 'Conv' }, { op: 'MaxPool' }, { op: 'Reshape' }]), 5)).toBe(7);
    expect(gradientOpset(graphOf([{ op: 'Add' }]), 9)).toBe(9);
  });

  it.each([
    ['an Add (broadcast attribute before 7)', [{ op: 'Add' }], 6, /node 'n0_Add' \('Add' resolves to version 6 at opset 6 but to version 7 at opset 7\)/],
    ['a Relu at opset 5 (consumed_inputs until 6)', [{ op: 'Relu' }], 5, /'Relu' resolves to version 1 at opset 5 but to version 6/],
    ['a Mul inside an If branch', [{ op: 'If', sub: 'Mul' }], 6, /node 'inner'/],
    ['an op that does not exist before 7', [{ op: 'Sin' }], 6, /'Sin' has no version at opset 6/],
  ] as const)('EXPECTED FAILURE - %s', (_label, nodes, opset, message) => {
    expect(() => gradientOpset(graphOf([...nodes]), opset)).toThrow(message);
  });
});
