/**
 * The finite-difference cases of the fused normalisation and activation rules, each with its
 * computation in primitive standard ops (`composed`) for the equivalence checks
 * (rules-fused.test.ts; rules-opset.test.ts runs them again at a low default-domain opset).
 */
import { float } from '../../src/onnx/attributes.ts';
import type { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { reduce } from '../../src/onnx/ops.ts';
import { randomValues, type GradCheckCase, type GradCheckInput } from '../helpers/gradcheck.ts';

const MS = 'com.microsoft';
const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const absent: GradCheckInput = { name: '', dims: [] };
/** Integer ids in [0, n), a function of the dims so alt runs get their own. */
const ids = (name: string, dims: number[], n: number, seed: number, altDims?: number[]): GradCheckInput => ({
  name,
  dims,
  ...(altDims ? { altDims } : {}),
  type: 'int32',
  values: (d) => Array.from({ length: numel(d) }, (_, i) => (i * 7 + seed * 3 + Math.floor(i / 3)) % n),
});

// ---- composed (unfused) forms, in primitive standard ops ---------------------------------------

type Composed = NonNullable<GradCheckCase['composed']>;
const k = (b: GraphBuilder, v: number, dt: number) => (dt === DT.DOUBLE ? b.constDouble([v], []) : b.scalar(v, dt));

/** Mean / inverse std (standard) or inverse RMS (rms) of x over its last `n` axes, kept. */
function stats(b: GraphBuilder, opset: number, x: string, rank: number, n: number, eps: number, dt: number, kind: 'standard' | 'rms') {
  const axes = Array.from({ length: n }, (_, i) => rank - n + i);
  const mean = (v: string) => reduce({ b, opset }, 'ReduceMean', v, axes, 1);
  const mu = kind === 'standard' ? mean(x) : undefined;
  const d = mu ? b.op('Sub', [x, mu]) : x;
  const inv = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [d, d])), k(b, eps, dt)])])]);
  return { mu, d, inv };
}

/** SkipLayerNormalization / SkipSimplifiedLayerNormalization of rank-`rank` inputs. */
const skipNorm = (kind: 'standard' | 'rms', rank: number, eps: number, dt: number): Composed => (b, [input, skip, gamma, ...rest], [y, mean, inv, sum]) => {
  const [beta, bias] = kind === 'standard' ? [rest[0], rest[1]] : [undefined, rest[0]];
  let s = b.op('Add', [input!, skip!]);
  if (bias) s = b.op('Add', [s, bias]);
  const st = stats(b, 17, s, rank, 1, eps, dt, kind);
  const scaled = b.op('Mul', [b.op('Mul', [st.d, st.inv]), gamma!]);
  b.opN(beta ? 'Add' : 'Identity', beta ? [scaled, beta] : [scaled], {}, { outputs: [y!] });
  if (mean) b.opN(st.mu ? 'Identity' : 'Mul', st.mu ? [st.mu] : [st.inv, k(b, 0, dt)], {}, { outputs: [mean] });
  if (inv) b.opN('Identity', [st.inv], {}, { outputs: [inv] });
  if (sum) b.opN('Identity', [s], {}, { outputs: [sum] });
};

/** RMSNormalization / SimplifiedLayerNormalization over the last `n` of `rank` axes. */
const rmsNorm = (opset: number, rank: number, n: number, eps: number, dt: number): Composed => (b, [x, scale], [y, inv]) => {
  const st = stats(b, opset, x!, rank, n, eps, dt, 'rms');
  b.opN('Mul', [b.op('Mul', [x!, st.inv]), scale!], {}, { outputs: [y!] });
  if (inv) b.opN(dt === DT.FLOAT ? 'Identity' : 'Cast', [st.inv], dt === DT.FLOAT ? {} : { to: DT.FLOAT }, { outputs: [inv] });
};

/** EmbedLayerNormalization: Gathers, LayerNorm in primitives; mask_index as the mask's row sums. */
const embedNorm = (eps: number, seq: number): Composed => (b, inputs, [y, maskIndex, sum]) => {
  const [ids_, segIds, word, pos, seg, gamma, beta, mask, posIds] = inputs;
  const rows = (table: string, i: string) => b.op('Gather', [table, i], { axis: 0 });
  const positions = posIds || b.constInt64(Array.from({ length: seq }, (_, i) => i), [1, seq]);
  let e = b.op('Add', [rows(word!, ids_!), rows(pos!, positions)]);
  if (segIds && seg) e = b.op('Add', [e, rows(seg, segIds)]);
  const st = stats(b, 17, e, 3, 1, eps, DT.FLOAT, 'standard');
  b.opN('Add', [b.op('Mul', [b.op('Mul', [st.d, st.inv]), gamma!]), beta!], {}, { outputs: [y!] });
  if (maskIndex) {
    const rowSum = (v: string) => reduce({ b, opset: 17 }, 'ReduceSum', b.op('Cast', [v], { to: DT.INT64 }), [1], 0);
    const count = mask ? rowSum(mask) : b.op('Mul', [rowSum(ids_!), b.constInt64([0], [])]);
    b.opN('Cast', [count], { to: DT.INT32 }, { outputs: [maskIndex] });
  }
  if (sum) b.opN('Identity', [e], {}, { outputs: [sum] });
};

/** ½z(1 + tanh(a·z + c·z³)) with FastGelu's constants. */
function fastGelu(b: GraphBuilder, z: string, dt: number, out: string): void {
  const inner = b.op('Mul', [z, b.op('Add', [k(b, 0.797885, dt), b.op('Mul', [b.op('Mul', [z, z]), k(b, 0.035677, dt)])])]);
  b.opN('Mul', [b.op('Mul', [z, k(b, 0.5, dt)]), b.op('Add', [k(b, 1, dt), b.op('Tanh', [inner])])], {}, { outputs: [out] });
}
const fastGeluComposed = (dt: number): Composed => (b, [x, bias], [y]) => fastGelu(b, bias ? b.op('Add', [x!, bias]) : x!, dt, y!);
const gemmFastGeluComposed: Composed = (b, [x, w, bias], [y]) => {
  const p = b.op('MatMul', [x!, w!]);
  fastGelu(b, bias ? b.op('Add', [p, bias]) : p, DT.FLOAT, y!);
};
const erfGelu = (b: GraphBuilder, z: string, out: string) =>
  b.opN('Mul', [b.op('Mul', [z, k(b, 0.5, DT.FLOAT)]), b.op('Add', [k(b, 1, DT.FLOAT), b.op('Erf', [b.op('Mul', [z, k(b, Math.SQRT1_2, DT.FLOAT)])])])], {}, { outputs: [out] });
const quickGeluComposed = (alpha: number): Composed => (b, [x], [y]) => b.opN('Mul', [x!, b.op('Sigmoid', [b.op('Mul', [x!, k(b, alpha, DT.FLOAT)])])], {}, { outputs: [y!] });

// ---- cases --------------------------------------------------------------------------------------

const f32 = { dtype: 'float32' as const, domain: MS };
const H = 4;
const E = 1e-5;

export const FUSED_CASES: Array<[string, GradCheckCase]> = [
  // SkipLayerNormalization: S = input + skip (+ bias), Y = LN(S)·γ (+ β); outputs Y, mean, inv_std_var, S
  [
    'SkipLayerNormalization beta + bias, all four outputs, dynamic batch and sequence',
    {
      ...f32, op: 'SkipLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, composed: skipNorm('standard', 3, E, DT.FLOAT),
      inputs: [{ name: 'x', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'skip', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }, { name: 'bias', dims: [H] }],
    },
  ],
  [
    'SkipLayerNormalization skip [1, S, H] broadcast over the batch, no beta, no bias, Y and S',
    {
      ...f32, op: 'SkipLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, skipOutputs: [1, 2], composed: skipNorm('standard', 3, E, DT.FLOAT),
      inputs: [{ name: 'x', dims: [2, 3, H], altDims: [4, 5, H] }, { name: 'skip', dims: [1, 3, H], altDims: [1, 5, H] }, { name: 'gamma', dims: [H] }],
    },
  ],
  [
    'SkipLayerNormalization skip [S, H], bias without beta (absent input 3)',
    {
      ...f32, op: 'SkipLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, composed: skipNorm('standard', 3, E, DT.FLOAT),
      inputs: [{ name: 'x', dims: [3, 2, H] }, { name: 'skip', dims: [2, H] }, { name: 'gamma', dims: [H] }, absent, { name: 'bias', dims: [H] }],
    },
  ],
  [
    'SkipLayerNormalization 2-D [tokens, H], default epsilon, output Y only',
    { ...f32, op: 'SkipLayerNormalization', composed: skipNorm('standard', 2, 1e-12, DT.FLOAT), inputs: [{ name: 'x', dims: [5, H], altDims: [7, H] }, { name: 'skip', dims: [5, H], altDims: [7, H] }, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }] },
  ],
  [
    'SkipLayerNormalization only input_skip_bias_sum used (γ, β get zeros), frozen γ',
    {
      ...f32, op: 'SkipLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, skipOutputs: [0, 1, 2], composed: skipNorm('standard', 3, E, DT.FLOAT),
      inputs: [{ name: 'x', dims: [2, 2, H] }, { name: 'skip', dims: [2, 2, H] }, { name: 'gamma', dims: [H], grad: false }, { name: 'beta', dims: [H] }, { name: 'bias', dims: [H] }],
    },
  ],
  [
    'SkipLayerNormalization statistics outputs only (mean, inv_std_var)',
    { ...f32, op: 'SkipLayerNormalization', attrs: { epsilon: float(E) }, outputs: 3, skipOutputs: [0], composed: skipNorm('standard', 3, E, DT.FLOAT), inputs: [{ name: 'x', dims: [2, 3, H] }, { name: 'skip', dims: [2, 3, H] }, { name: 'gamma', dims: [H] }] },
  ],
  // SkipSimplifiedLayerNormalization: Y = S·inv·γ, inv = 1/√(mean(S²) + ε); mean output is zeros
  [
    'SkipSimplifiedLayerNormalization bias, all four outputs, dynamic batch and sequence',
    {
      ...f32, op: 'SkipSimplifiedLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, composed: skipNorm('rms', 3, E, DT.FLOAT),
      inputs: [{ name: 'x', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'skip', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'gamma', dims: [H] }, { name: 'bias', dims: [H] }],
    },
  ],
  [
    'SkipSimplifiedLayerNormalization skip [1, S, H], no bias, Y and S',
    {
      ...f32, op: 'SkipSimplifiedLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, skipOutputs: [1, 2], composed: skipNorm('rms', 3, E, DT.FLOAT),
      inputs: [{ name: 'x', dims: [2, 3, H], altDims: [2, 6, H] }, { name: 'skip', dims: [1, 3, H], altDims: [1, 6, H] }, { name: 'gamma', dims: [H] }],
    },
  ],
  [
    'SkipSimplifiedLayerNormalization 2-D [tokens, H], skip [S, H] on 3-D, default epsilon',
    { ...f32, op: 'SkipSimplifiedLayerNormalization', outputs: 3, composed: skipNorm('rms', 3, 1e-12, DT.FLOAT), inputs: [{ name: 'x', dims: [2, 3, H] }, { name: 'skip', dims: [3, H] }, { name: 'gamma', dims: [H] }] },
  ],
  [
    'SkipSimplifiedLayerNormalization 2-D tokens, bias',
    { ...f32, op: 'SkipSimplifiedLayerNormalization', attrs: { epsilon: float(E) }, outputs: 4, composed: skipNorm('rms', 2, E, DT.FLOAT), inputs: [{ name: 'x', dims: [5, H], altDims: [8, H] }, { name: 'skip', dims: [5, H], altDims: [8, H] }, { name: 'gamma', dims: [H] }, { name: 'bias', dims: [H] }] },
  ],
  // SimplifiedLayerNormalization (default domain, ORT): Y = X·inv·γ over [axis, rank); inv_std_var
  [
    'SimplifiedLayerNormalization axis -1, float64, dynamic batch and sequence',
    { op: 'SimplifiedLayerNormalization', outputs: 2, skipOutputs: [1], attrs: { epsilon: float(E) }, composed: rmsNorm(17, 3, 1, E, DT.DOUBLE), inputs: [{ name: 'x', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'scale', dims: [H] }] },
  ],
  [
    'SimplifiedLayerNormalization axis 1 over two axes, scale [S, H], float64',
    { op: 'SimplifiedLayerNormalization', attrs: { axis: 1, epsilon: float(1e-3) }, composed: rmsNorm(17, 3, 2, 1e-3, DT.DOUBLE), inputs: [{ name: 'x', dims: [3, 2, H], altDims: [5, 2, H] }, { name: 'scale', dims: [2, H] }] },
  ],
  [
    'SimplifiedLayerNormalization with inv_std_var weighted (float32), frozen scale',
    { op: 'SimplifiedLayerNormalization', dtype: 'float32', outputs: 2, composed: rmsNorm(17, 2, 1, 1e-5, DT.FLOAT), inputs: [{ name: 'x', dims: [3, H], altDims: [6, H] }, { name: 'scale', dims: [H], grad: false }] },
  ],
  // RMSNormalization (opset 23)
  [
    'RMSNormalization-23 axis -1, float64, dynamic batch and sequence',
    { op: 'RMSNormalization', opset: 23, attrs: { epsilon: float(E) }, composed: rmsNorm(23, 3, 1, E, DT.DOUBLE), inputs: [{ name: 'x', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'scale', dims: [H] }] },
  ],
  [
    'RMSNormalization-23 axis 1, scale [1, H] broadcast over the normalised axes, float64',
    { op: 'RMSNormalization', opset: 23, attrs: { axis: 1 }, composed: rmsNorm(23, 3, 2, 1e-5, DT.DOUBLE), inputs: [{ name: 'x', dims: [2, 3, H], altDims: [4, 3, H] }, { name: 'scale', dims: [1, H] }] },
  ],
  [
    'RMSNormalization-23 axis -2 (negative), stash_type 0, float64',
    { op: 'RMSNormalization', opset: 23, attrs: { axis: -2, stash_type: 0, epsilon: float(1e-3) }, composed: rmsNorm(23, 3, 2, 1e-3, DT.DOUBLE), inputs: [{ name: 'x', dims: [2, 3, H] }, { name: 'scale', dims: [3, H] }] },
  ],
  [
    'RMSNormalization-23 float32',
    { op: 'RMSNormalization', opset: 23, dtype: 'float32', composed: rmsNorm(23, 2, 1, 1e-5, DT.FLOAT), inputs: [{ name: 'x', dims: [3, H], altDims: [5, H] }, { name: 'scale', dims: [H] }] },
  ],
  // EmbedLayerNormalization: E = word[ids] + pos[pos_ids] (+ seg[seg_ids]), Y = LN(E)·γ + β
  [
    'EmbedLayerNormalization with segments, mask, embedding_sum, repeated ids',
    {
      ...f32, op: 'EmbedLayerNormalization', attrs: { epsilon: float(E) }, outputs: 3, skipOutputs: [1], composed: embedNorm(E, 3),
      inputs: [ids('ids', [2, 3], 4, 1), ids('seg', [2, 3], 2, 2), { name: 'word', dims: [4, H] }, { name: 'pos', dims: [5, H] }, { name: 'segemb', dims: [2, H] }, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }, ids('mask', [2, 3], 2, 3)],
    },
  ],
  [
    'EmbedLayerNormalization without segments, output and mask_index only, mask_index_type 0',
    {
      ...f32, op: 'EmbedLayerNormalization', attrs: { epsilon: float(E), mask_index_type: 0 }, outputs: 2, skipOutputs: [1], composed: embedNorm(E, 4),
      inputs: [ids('ids', [3, 4], 5, 4), absent, { name: 'word', dims: [5, H] }, { name: 'pos', dims: [6, H] }, absent, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }],
    },
  ],
  [
    'EmbedLayerNormalization position_ids [B, S]',
    {
      ...f32, op: 'EmbedLayerNormalization', attrs: { epsilon: float(E) }, outputs: 2, skipOutputs: [1], composed: embedNorm(E, 3),
      inputs: [ids('ids', [2, 3], 4, 5), ids('seg', [2, 3], 2, 6), { name: 'word', dims: [4, H] }, { name: 'pos', dims: [6, H] }, { name: 'segemb', dims: [2, H] }, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }, absent, ids('posids', [2, 3], 6, 7)],
    },
  ],
  [
    'EmbedLayerNormalization position_ids [1, S] shared by the batch, dynamic batch, default epsilon',
    {
      ...f32, op: 'EmbedLayerNormalization', outputs: 3, skipOutputs: [1], composed: embedNorm(1e-12, 3),
      inputs: [ids('ids', [2, 3], 4, 8, [4, 3]), ids('seg', [2, 3], 2, 9, [4, 3]), { name: 'word', dims: [4, H] }, { name: 'pos', dims: [5, H] }, { name: 'segemb', dims: [2, H] }, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }, ids('mask', [2, 3], 2, 10, [4, 3]), ids('posids', [1, 3], 5, 11)],
    },
  ],
  [
    'EmbedLayerNormalization only embedding_sum used (γ, β get zeros)',
    {
      ...f32, op: 'EmbedLayerNormalization', attrs: { epsilon: float(E) }, outputs: 3, skipOutputs: [0, 1], composed: embedNorm(E, 2),
      inputs: [ids('ids', [2, 2], 3, 12), ids('seg', [2, 2], 2, 13), { name: 'word', dims: [3, H] }, { name: 'pos', dims: [4, H] }, { name: 'segemb', dims: [2, H] }, { name: 'gamma', dims: [H] }, { name: 'beta', dims: [H] }],
    },
  ],
  // BiasAdd (no CPU kernel: composed forward): Y = X + bias + skip
  [
    'BiasAdd (composed forward), dynamic batch and size',
    { ...f32, op: 'BiasAdd', runComposed: true, composed: (b, [x, bias, skip], [y]) => b.opN('Add', [b.op('Add', [x!, bias!]), skip!], {}, { outputs: [y!] }), inputs: [{ name: 'x', dims: [2, 3, H], altDims: [3, 5, H] }, { name: 'bias', dims: [H] }, { name: 'skip', dims: [2, 3, H], altDims: [3, 5, H] }] },
  ],
  // GemmFastGelu (no CPU kernel: composed forward): Y = FastGelu(X·W (+ bias))
  [
    'GemmFastGelu 3-D X with bias (composed forward), dynamic batch and sequence',
    { ...f32, op: 'GemmFastGelu', runComposed: true, composed: gemmFastGeluComposed, inputs: [{ name: 'x', dims: [2, 3, 4], altDims: [3, 5, 4] }, { name: 'w', dims: [4, 5] }, { name: 'bias', dims: [5] }] },
  ],
  ['GemmFastGelu 2-D X, no bias (composed forward)', { ...f32, op: 'GemmFastGelu', runComposed: true, composed: gemmFastGeluComposed, inputs: [{ name: 'x', dims: [3, 4] }, { name: 'w', dims: [4, 2] }] }],
  ['GemmFastGelu frozen W (composed forward)', { ...f32, op: 'GemmFastGelu', runComposed: true, composed: gemmFastGeluComposed, inputs: [{ name: 'x', dims: [2, 2, 3] }, { name: 'w', dims: [3, 4], grad: false }, { name: 'bias', dims: [4] }] }],
  // GELU family against their specs
  ['FastGelu float64 (function body), spec constants', { op: 'FastGelu', domain: MS, composed: fastGeluComposed(DT.DOUBLE), inputs: [{ name: 'x', dims: [2, 5], altDims: [3, 5], values: (d) => randomValues(numel(d), 31, -3, 3) }] }],
  ['FastGelu float64 with bias', { op: 'FastGelu', domain: MS, composed: fastGeluComposed(DT.DOUBLE), inputs: [{ name: 'x', dims: [2, 3, 4], values: (d) => randomValues(numel(d), 32, -3, 3) }, { name: 'bias', dims: [4] }] }],
  ['FastGelu float32 with bias, dynamic', { ...f32, op: 'FastGelu', composed: fastGeluComposed(DT.FLOAT), inputs: [{ name: 'x', dims: [2, 3, 4], altDims: [3, 2, 4] }, { name: 'bias', dims: [4] }] }],
  ['Gelu (com.microsoft)', { ...f32, op: 'Gelu', composed: (b, [x], [y]) => erfGelu(b, x!, y!), inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5], values: (d) => randomValues(numel(d), 33, -3, 3) }] }],
  ['BiasGelu, dynamic', { ...f32, op: 'BiasGelu', composed: (b, [a, bias], [y]) => erfGelu(b, b.op('Add', [a!, bias!]), y!), inputs: [{ name: 'a', dims: [2, 3, 4], altDims: [3, 5, 4] }, { name: 'bias', dims: [4] }] }],
  ['QuickGelu default alpha 1.702', { ...f32, op: 'QuickGelu', composed: quickGeluComposed(1.702), inputs: [{ name: 'x', dims: [2, 5], altDims: [3, 5], values: (d) => randomValues(numel(d), 34, -3, 3) }] }],
  ['QuickGelu alpha 1.5', { ...f32, op: 'QuickGelu', attrs: { alpha: float(1.5) }, composed: quickGeluComposed(1.5), inputs: [{ name: 'x', dims: [3, 4], values: (d) => randomValues(numel(d), 35, -3, 3) }] }],
];

