/**
 * Backward math shared by the attention-family rules: com.microsoft Attention,
 * MultiHeadAttention, GroupQueryAttention and RotaryEmbedding, and the ONNX-domain Attention and
 * RotaryEmbedding. The fused forward node stays as it is; the backward recomputes the attention
 * probabilities from the node's inputs (the fused kernels do not output them) and is written in
 * standard ops only.
 *
 * Forward, per batch and query head (kv head = head / g, with g = N / Nk query heads per kv head):
 *   S0 = scale · Q Kᵀ                raw scores [S, T]
 *   S1 = c · tanh(S0 / c)            softcap (c > 0), else S1 = S0
 *   S2 = S1 + M                      M: masks (fixed) plus attention bias (may be trainable)
 *   P  = softmax(S2) over T          with a sink logit σ in the normaliser (smooth softmax)
 *   Y  = P V
 * Backward:
 *   dV = Pᵀ dY     dP = dY Vᵀ     dS2 = P ⊙ (dP − rowsum(dP ⊙ P))     dM = dS2
 *   dS0 = dS2 ⊙ (1 − tanh²(S0 / c))     dQ = scale · dS0 K     dK = dS0ᵀ (scale · Q)
 *   dσ = −Σ_rows p_σ · rowsum(dP ⊙ P)   (the sink column has no dP of its own)
 * Gradients of the score tensors that some ops also output (S0, S1, S2, P) join at their point.
 *
 * Grouped heads (GQA, MQA) need no repeated K and V: Q [B, N, S, H] is viewed as
 * [B, Nk, g·S, H] (the g query heads of one kv head are consecutive), so Q Kᵀ, dK and dV are
 * plain batched products and come out summed over the group. The views are free Reshapes.
 *
 * Also here: head split/merge, position-based masks (causal, local window, valid key count) and
 * the rotary rotation (forward for recomputing, inverse for the gradient: dX = Rᵀ dY).
 */
import type { GradContext } from '../../rule.ts';
import { DataType as DT } from '../../../onnx/dtype.ts';
import { concatInts, needsOpset, range, reduce, scalarOf, squeeze, swapLast2, transpose, unsqueeze } from '../../../onnx/ops.ts';
import { dimOf, split, unsupported } from './helpers.ts';
import { makeTensor } from '../../../onnx/tensor.ts';

/** Whether output `i` of the node exists. */
export function hasOutput(ctx: GradContext, i: number): boolean {
  return i < ctx.node.output.length && ctx.node.output[i] !== '';
}

/** Gradients that reach an attention node's outputs: Y (output 0) and the outputs at `present` / `scores`. */
export interface AttentionOutputGrads {
  dY?: string;
  dPresentK?: string;
  dPresentV?: string;
  dScores?: string;
  /** Whether any of them does. */
  any: boolean;
}

/** The gradients of output 0 and of the present key/value and score outputs (indices, where the op has them). */
export function attentionOutputGrads(ctx: GradContext, at: { presentK?: number; presentV?: number; scores?: number }): AttentionOutputGrads {
  const go = (i: number | undefined) => (i !== undefined && hasOutput(ctx, i) ? ctx.GO(i) : undefined);
  const g = { dY: ctx.GO(0), dPresentK: go(at.presentK), dPresentV: go(at.presentV), dScores: go(at.scores) };
  return { ...g, any: Object.values(g).some((x) => x !== undefined) };
}

/**
 * All keys (or values) attended, [B, N, P + L, H]: the node's present output `present` where it
 * has one, else past input `past` ⧺ the new ones `fresh` along the sequence (or `fresh` alone).
 */
export function allKeys(ctx: GradContext, present: number, past: number | undefined, fresh: string): string {
  if (hasOutput(ctx, present)) return ctx.O(present);
  return past !== undefined ? ctx.b.op('Concat', [ctx.I(past), fresh], { axis: 2 }) : fresh;
}

/**
 * The new tokens' share of a gradient over all keys [B, N, P + L, H] (the attention's, plus the
 * present output's): the keys after the first `past` (an int64 scalar; none: all of them), heads
 * merged back to [B, L, N·H] when `merge`.
 */
export function newKeysGrad(ctx: GradContext, all: string | undefined, dPresent: string | undefined, past: string | undefined, merge: boolean): string | undefined {
  const { b } = ctx;
  let g = all && dPresent ? b.op('Add', [all, dPresent]) : (all ?? dPresent);
  if (!g) return undefined;
  if (past) g = b.op('Slice', [g, b.op('Reshape', [past, b.constInt64([1])]), b.constInt64([2 ** 62]), b.constInt64([2])]);
  return merge ? mergeHeads(ctx, g) : g;
}

/** Dim `axis` of forward value `name`, which must be static; `what` names it in the error. */
export function staticDim(ctx: GradContext, name: string, axis: number, what: string): number {
  const d = ctx.shape(name)[axis];
  if (typeof d !== 'number') unsupported(ctx, `${what} (dim ${axis} of '${name}') must be static; export the model with a fixed ${what}`);
  return d;
}

/** Dim `axis` of forward value `name` as an int64 scalar (a constant where static). */
export function dimScalar(ctx: GradContext, name: string, axis: number): string {
  const d = ctx.shape(name)[axis];
  if (typeof d === 'number') return ctx.b.constInt64([d], []);
  return squeeze(ctx, dimOf(ctx, name, axis), [0]);
}

/** An int64 scalar constant. */
export function int64Scalar(ctx: GradContext, v: number): string {
  return ctx.b.constInt64([v], []);
}

/** [B, S, N·H] → [B, N, S, H]. */
export function splitHeads(ctx: GradContext, x: string, numHeads: number, headSize: number): string {
  return transpose(ctx, ctx.b.op('Reshape', [x, ctx.b.constInt64([0, 0, numHeads, headSize])]), [0, 2, 1, 3]);
}

/** [B, N, S, H] → [B, S, N·H]. */
export function mergeHeads(ctx: GradContext, x: string): string {
  return ctx.b.op('Reshape', [transpose(ctx, x, [0, 2, 1, 3]), ctx.b.constInt64([0, 0, -1])]);
}

/** Query positions i as [1, 1, S, 1] and key positions j as [1, 1, 1, T] (int64). */
function positionGrid(ctx: GradContext, S: string, T: string): { i: string; j: string } {
  const { b } = ctx;
  const zero = int64Scalar(ctx, 0);
  const one = int64Scalar(ctx, 1);
  const i = b.op('Reshape', [range(ctx, zero, S, one), b.constInt64([1, 1, -1, 1])]);
  const j = b.op('Reshape', [range(ctx, zero, T, one), b.constInt64([1, 1, 1, -1])]);
  return { i, j };
}

/** `x` (an int64 scalar or [B] vector) as [B|1, 1, 1, 1]. */
function perBatch(ctx: GradContext, x: string): string {
  return ctx.b.op('Reshape', [x, ctx.b.constInt64([-1, 1, 1, 1])]);
}

export interface PositionMask {
  /** Number of queries S and keys T (int64 scalars). */
  S: string;
  T: string;
  /** Absolute position of query 0: an int64 scalar or [B] (default 0). Query i is at offset + i. */
  offset?: string;
  /** Keys after the query's own position are hidden. */
  causal?: boolean;
  /** Keys more than this many positions before the query are hidden (local / sliding window). */
  leftWindow?: number;
  /** Keys more than this many positions after the query are hidden. */
  rightWindow?: number;
  /** Keys at or after this index are hidden: an int64 scalar or [B]. */
  validKeys?: string;
  /** Keys before this index are hidden: an int64 scalar or [B]. */
  firstKey?: string;
  /**
   * The last query sees every key the causal rule would hide (ONNX Runtime's MultiHeadAttention
   * CPU kernel); the same as plain causal when the keys end with the queries (self-attention).
   */
  openLastRow?: boolean;
}

/**
 * Which keys each query may attend, from positions alone: a bool [B|1, 1, S, T] (true = attend),
 * or undefined when nothing is hidden. Query i (absolute position p = offset + i) sees key j iff
 * j ≤ p (causal), p − left ≤ j, j ≤ p + right, firstKey ≤ j < validKeys.
 */
export function positionMask(ctx: GradContext, m: PositionMask): string | undefined {
  const { b } = ctx;
  const { i, j } = positionGrid(ctx, m.S, m.T);
  const p = m.offset ? b.op('Add', [i, perBatch(ctx, m.offset)]) : i;
  const conds: string[] = [];
  const one = int64Scalar(ctx, 1);
  if (m.causal) {
    let c = b.op('Less', [j, b.op('Add', [p, one])]);
    if (m.openLastRow) c = b.op('Or', [c, b.op('Equal', [i, b.op('Sub', [m.S, one])])]);
    conds.push(c);
  }
  if (m.leftWindow !== undefined && m.leftWindow >= 0) conds.push(b.op('Greater', [j, b.op('Sub', [p, int64Scalar(ctx, m.leftWindow + 1)])]));
  if (m.rightWindow !== undefined && m.rightWindow >= 0) conds.push(b.op('Less', [j, b.op('Add', [p, int64Scalar(ctx, m.rightWindow + 1)])]));
  if (m.validKeys) conds.push(b.op('Less', [j, perBatch(ctx, m.validKeys)]));
  if (m.firstKey) conds.push(b.op('Not', [b.op('Less', [j, perBatch(ctx, m.firstKey)])]));
  if (conds.length === 0) return undefined;
  return conds.reduce((acc, c) => b.op('And', [acc, c]));
}

/** Additive form of a bool mask: 0 where `allowed`, `fill` elsewhere (the mask filter value or −∞). */
export function additiveMask(ctx: GradContext, allowed: string, fill: number, dt: number): string {
  return ctx.b.op('Where', [allowed, scalarOf(ctx, 0, dt), scalarOf(ctx, fill, dt)]);
}

/** An additive term of the scores, rank 4 and broadcastable to [B, N, S, T]. */
export interface ScoreTerm {
  name: string;
  /** Its head dim: 1 (shared by all heads) or N. */
  heads: number;
}

export interface AttentionCore {
  /** Q [B, N, S, H], K [B, Nk, T, H], V [B, Nk, T, Hv]: heads split, rotary applied, unscaled. */
  q: string;
  k: string;
  v: string;
  /** Element type of Q, K, V. */
  dtype: number;
  numHeads: number;
  kvHeads: number;
  headSize: number;
  vHeadSize: number;
  scale: number;
  /** Softcap c (0 or absent: none). */
  softcap?: number;
  /** Additive terms of S2 (masks, attention bias), summed. */
  terms?: ScoreTerm[];
  /** Smooth softmax: a sink logit per head ([N] forward value) or 'zero'. */
  sink?: string | 'zero';
  /** Query length S as a 1-D int64 [1] (needed with a sink input). */
  seqLen?: string;
  /** Rows whose every key is hidden (−∞) give zero probabilities instead of NaN. */
  zeroMaskedRows?: boolean;
  /** Element type the softmax runs in (softmax_precision), when it differs from Q's. */
  softmaxType?: number;
  /** Gradient of the attention output before head merging, [B, N, S, Hv]. */
  dY?: string;
  /** Gradients of score tensors the op outputs, [B, N, S, T]. */
  dS0?: string;
  dS1?: string;
  dS2?: string;
  dP?: string;
  need: { q: boolean; k: boolean; v: boolean; scores?: boolean; sink?: boolean };
}

export interface AttentionCoreGrads {
  dq?: string;
  dk?: string;
  dv?: string;
  /** Gradient of S2 (= of every additive term before un-broadcasting), [B, N, S, T]. */
  dScores?: string;
  /** Gradient of the sink logits, [N]. */
  dSink?: string;
}

/** Adds the defined values (undefined when none is). */
function addAll(ctx: GradContext, xs: Array<string | undefined>): string | undefined {
  const defined = xs.filter((x): x is string => x !== undefined);
  if (defined.length === 0) return undefined;
  return defined.reduce((acc, x) => ctx.b.op('Add', [acc, x]));
}

/**
 * The backward of one attention core (see the module comment). Recomputes the probabilities,
 * then returns the gradients of Q, K, V (K and V already summed over query groups), of the
 * scores (for attention biases) and of the sink logits, each only where `need` asks for it.
 */
export function attentionCoreGrads(ctx: GradContext, a: AttentionCore): AttentionCoreGrads {
  const { b } = ctx;
  const dt = a.dtype;
  const N = a.numHeads;
  const Nk = a.kvHeads;
  if (N % Nk !== 0) unsupported(ctx, `num_heads ${N} is not a multiple of kv_num_heads ${Nk}`);
  const g = N / Nk;
  const grouped = g > 1;
  // [B, N, S, x] ↔ [B, Nk, g·S, x] (free views; 0 keeps the input's dim at that index).
  const toGroups = (x: string, last: number) => (grouped ? b.op('Reshape', [x, b.constInt64([0, Nk, -1, last])]) : x);
  const fromGroups = (x: string, last: number) => (grouped ? b.op('Reshape', [x, b.constInt64([0, N, -1, last])]) : x);
  const termToGroups = (t: ScoreTerm) => {
    if (!grouped) return t.name;
    if (t.heads === N) return toGroups(t.name, 0);
    return b.op('Tile', [t.name, b.constInt64([1, 1, g, 1])]);
  };

  // Forward recompute.
  const qs = a.scale === 1 ? a.q : b.op('Mul', [a.q, scalarOf(ctx, a.scale, dt)]);
  const qg = toGroups(qs, a.headSize);
  const s0 = b.op('MatMul', [qg, swapLast2(ctx, a.k, 4)]);
  const c = a.softcap ?? 0;
  let tanh: string | undefined;
  let s1 = s0;
  if (c > 0) {
    tanh = b.op('Tanh', [b.op('Mul', [s0, scalarOf(ctx, 1 / c, dt)])]);
    s1 = b.op('Mul', [tanh, scalarOf(ctx, c, dt)]);
  }
  const terms = a.terms ?? [];
  const termHeads = Math.max(1, ...terms.map((t) => t.heads));
  const m = addAll(ctx, terms.map((t) => t.name));
  const s2 = m ? b.op('Add', [s1, termToGroups({ name: m, heads: termHeads })]) : s1;
  const { p, pSink } = probabilities(ctx, s2, a, { Nk, g, dt });

  // Backward.
  const dYg = a.dY ? toGroups(a.dY, a.vHeadSize) : undefined;
  const out: AttentionCoreGrads = {};
  if (a.need.v && dYg) out.dv = b.op('MatMul', [swapLast2(ctx, p, 4), dYg]);
  const dp = addAll(ctx, [dYg ? b.op('MatMul', [dYg, swapLast2(ctx, a.v, 4)]) : undefined, a.dP ? toGroups(a.dP, 0) : undefined]);
  const needScores = a.need.q || a.need.k || !!a.need.scores || !!a.need.sink;
  if (!needScores) return out;
  let ds2: string | undefined;
  if (dp) {
    const rowDot = reduce(ctx, 'ReduceSum', b.op('Mul', [dp, p]), [3], 1);
    ds2 = b.op('Mul', [p, b.op('Sub', [dp, rowDot])]);
    if (a.need.sink && pSink) out.dSink = sinkGrad(ctx, b.op('Neg', [b.op('Mul', [pSink, rowDot])]), N, Nk, g);
  }
  ds2 = addAll(ctx, [ds2, a.dS2 ? toGroups(a.dS2, 0) : undefined]);
  if (ds2 && a.need.scores) out.dScores = fromGroups(ds2, 0);
  const ds1 = addAll(ctx, [ds2, a.dS1 ? toGroups(a.dS1, 0) : undefined]);
  let ds0 = ds1;
  if (ds1 && tanh) ds0 = b.op('Mul', [ds1, b.op('Sub', [scalarOf(ctx, 1, dt), b.op('Mul', [tanh, tanh])])]);
  ds0 = addAll(ctx, [ds0, a.dS0 ? toGroups(a.dS0, 0) : undefined]);
  if (!ds0) return out;
  if (a.need.q) {
    const dqg = b.op('MatMul', [ds0, a.k]);
    out.dq = fromGroups(a.scale === 1 ? dqg : b.op('Mul', [dqg, scalarOf(ctx, a.scale, dt)]), a.headSize);
  }
  if (a.need.k) out.dk = b.op('MatMul', [swapLast2(ctx, ds0, 4), qg]);
  return out;
}

/** Softmax of the (grouped) scores, with the sink column and precision options of `a`. */
function probabilities(ctx: GradContext, s2: string, a: AttentionCore, g: { Nk: number; g: number; dt: number }): { p: string; pSink?: string } {
  const { b } = ctx;
  const st = a.softmaxType && a.softmaxType !== g.dt ? a.softmaxType : g.dt;
  const toSoftmax = (x: string) => (st !== g.dt ? b.op('Cast', [x], { to: st }) : x);
  const back = (x: string) => (st !== g.dt ? b.op('Cast', [x], { to: g.dt }) : x);
  const softmax = (x: string) => b.op('Softmax', [x], { axis: ctx.opset >= 13 ? -1 : 3 });
  let p: string;
  let pSink: string | undefined;
  if (a.sink !== undefined) {
    // One more column holding the sink logit; its probability only enlarges the normaliser.
    const rowShape = concatInts(ctx, [b.op('Slice', [b.op('Shape', [s2]), b.constInt64([0]), b.constInt64([3])]), 1]);
    let col: string;
    if (a.sink === 'zero') col = b.op('Expand', [scalarOf(ctx, 0, g.dt), rowShape]);
    else {
      // sink [N] → rows of the grouped layout: row r·S + i of kv head k uses sink[k·g + r].
      const perGroup = b.op('Reshape', [a.sink, b.constInt64([1, g.Nk, g.g, 1])]);
      if (!a.seqLen) throw new Error('attentionCoreGrads: a sink input needs seqLen');
      const perRow = b.op('Expand', [perGroup, concatInts(ctx, [1, g.Nk, g.g, a.seqLen])]);
      col = b.op('Expand', [b.op('Reshape', [perRow, b.constInt64([1, g.Nk, -1, 1])]), rowShape]);
    }
    const ext = softmax(toSoftmax(b.op('Concat', [s2, col], { axis: 3 })));
    const big = 2 ** 62;
    p = back(b.op('Slice', [ext, b.constInt64([0]), b.constInt64([-1]), b.constInt64([3])]));
    pSink = back(b.op('Slice', [ext, b.constInt64([-1]), b.constInt64([big]), b.constInt64([3])]));
  } else {
    p = back(softmax(toSoftmax(s2)));
  }
  if (a.zeroMaskedRows) p = b.op('Where', [b.op('IsNaN', [p]), scalarOf(ctx, 0, g.dt), p]);
  return { p, ...(pSink ? { pSink } : {}) };
}

/** Sums the sink-column gradient [B, Nk, g·S, 1] back to one value per query head, [N]. */
function sinkGrad(ctx: GradContext, dCol: string, N: number, Nk: number, g: number): string {
  const perGroup = ctx.b.op('Reshape', [dCol, ctx.b.constInt64([0, Nk, g, -1])]);
  return ctx.b.op('Reshape', [reduce(ctx, 'ReduceSum', perGroup, [0, 3], 0), ctx.b.constInt64([N])]);
}

/** How a rotary embedding rotates the last axis (head_size) of its input. */
export interface RotarySpec {
  /** Pairs are (x[2k], x[2k+1]) when interleaved, else (x[k], x[k + R/2]). */
  interleaved: boolean;
  /** Channels rotated (R, even); the rest pass through. */
  rotaryDim: number;
  headSize: number;
}

/** cos/sin of the rotation angles, broadcastable to x[..., :R/2]; `rank` is theirs. */
export interface RotaryTables {
  cos: string;
  sin: string;
  rank: number;
}

/**
 * Rotates the first R channels of the last axis of `x` (rank `rank`) by the angles of `t`:
 * (x1, x2) → (c·x1 − s·x2, s·x1 + c·x2). `inverse` rotates the other way, which is the gradient:
 * the rotation is orthogonal, so dX = Rᵀ dY.
 */
export function rotate(ctx: GradContext, x: string, t: RotaryTables, spec: RotarySpec, rank: number, inverse: boolean): string {
  const { b } = ctx;
  const axis = rank - 1;
  const R = spec.rotaryDim;
  const H = spec.headSize;
  if (R % 2 !== 0 || R > H || R <= 0) unsupported(ctx, `rotary dimension ${R} must be even and at most head_size ${H}`);
  const [xr, rest] = R < H ? split(ctx, x, axis, [R, H - R]) : [x, undefined];
  const zeros = new Array<number>(axis).fill(0);
  let x1: string;
  let x2: string;
  let c = t.cos;
  let s = t.sin;
  if (spec.interleaved) {
    // [..., R] → [..., R/2, 2]: the pair member gets its own axis, and the tables one of size 1.
    const pairs = b.op('Reshape', [xr!, b.constInt64([...zeros, R / 2, 2])]);
    [x1, x2] = split(ctx, pairs, rank, [1, 1]) as [string, string];
    c = unsqueeze(ctx, c, [t.rank]);
    s = unsqueeze(ctx, s, [t.rank]);
  } else {
    [x1, x2] = split(ctx, xr!, axis, [R / 2, R / 2]) as [string, string];
  }
  const cx1 = b.op('Mul', [c, x1]);
  const cx2 = b.op('Mul', [c, x2]);
  const sx1 = b.op('Mul', [s, x1]);
  const sx2 = b.op('Mul', [s, x2]);
  const real = inverse ? b.op('Add', [cx1, sx2]) : b.op('Sub', [cx1, sx2]);
  const imag = inverse ? b.op('Sub', [cx2, sx1]) : b.op('Add', [sx1, cx2]);
  let rotated: string;
  if (spec.interleaved) rotated = b.op('Reshape', [b.op('Concat', [real, imag], { axis: rank }), b.constInt64([...zeros, R])]);
  else rotated = b.op('Concat', [real, imag], { axis });
  return rest ? b.op('Concat', [rotated, rest], { axis }) : rotated;
}

/** cos/sin rows of each token: Gather(cache [M, R/2], positions) — positions' shape + [R/2]. */
export function gatherRotaryTables(ctx: GradContext, cosCache: string, sinCache: string, positions: string, positionsRank: number): RotaryTables {
  const { b } = ctx;
  return {
    cos: b.op('Gather', [cosCache, positions], { axis: 0 }),
    sin: b.op('Gather', [sinCache, positions], { axis: 0 }),
    rank: positionsRank + 1,
  };
}

/** Tables with size-1 axes inserted (to line them up with the input's layout). */
export function unsqueezeTables(ctx: GradContext, t: RotaryTables, axes: number[]): RotaryTables {
  return { cos: unsqueeze(ctx, t.cos, axes), sin: unsqueeze(ctx, t.sin, axes), rank: t.rank + axes.length };
}

/** int64 positions start + [0, S) as [1, S] (start: an int64 scalar or one-element tensor). */
export function sequentialPositions(ctx: GradContext, S: string, start: string): string {
  const { b } = ctx;
  const s0 = b.op('Reshape', [start, b.constInt64([], [0])]);
  return unsqueeze(ctx, range(ctx, s0, b.op('Add', [s0, S]), int64Scalar(ctx, 1)), [0]);
}

/** Casts an integer index tensor to int64 (a no-op for int64). */
export function toInt64(ctx: GradContext, x: string): string {
  return ctx.dtype(x) === DT.INT64 ? x : ctx.b.op('Cast', [x], { to: DT.INT64 });
}

/** What ONNX Runtime's com.microsoft attention kernels add to the scores of future keys. */
export const CAUSAL_FILL = -10000;

/**
 * The additive term of a com.microsoft attention mask (Attention's mask_index,
 * MultiHeadAttention's key_padding_mask; int32), in ONNX Runtime's CPU semantics, with masked
 * keys getting `fill` (mask_filter_value) added:
 *   [B]       keys j ≥ mask[b] hidden (right padding)
 *   [2B]      keys j ≥ mask[b] or j < mask[B + b] hidden (left padding: end, then start positions)
 *   [B, T]    raw mask, key j hidden where mask[b, j] ≤ 0
 *   [B, S, T] raw mask per query
 * A 1-D mask of run-time length is read as [B] or [2B] at run time (start positions 0 when B).
 * The [3B + 2] cumulative-length form and 4-D masks are refused (ONNX Runtime's CPU kernels do
 * not apply them, so no rule could be verified).
 */
export function contribMaskTerm(ctx: GradContext, mask: string, q: { batch: string; batchDim: number | null; S: string; T: string }, fill: number, dt: number): ScoreTerm {
  const { b } = ctx;
  const rank = ctx.rank(mask);
  if (rank === 2 || rank === 3) {
    const allowed = b.op('Greater', [mask, b.op('Cast', [int64Scalar(ctx, 0)], { to: ctx.dtype(mask) })]);
    const a4 = unsqueeze(ctx, allowed, rank === 2 ? [1, 2] : [1]);
    return { name: additiveMask(ctx, a4, fill, dt), heads: 1 };
  }
  if (rank !== 1) unsupported(ctx, `a ${rank}-D attention mask is not applied by ONNX Runtime's CPU kernel; use a [B, T] mask`);
  const len = ctx.shape(mask)[0];
  const batchDim = q.batchDim;
  const m = toInt64(ctx, mask);
  const B1 = b.op('Reshape', [q.batch, b.constInt64([1])]);
  let end = m;
  let start: string | undefined;
  if (typeof len === 'number' && typeof batchDim === 'number') {
    if (len === 3 * batchDim + 2) unsupported(ctx, 'mask_index of shape [3B + 2] (cumulative sequence lengths of the fused GPU kernels); use a [B] or [B, T] mask');
    if (len === 2 * batchDim) {
      end = b.op('Slice', [m, b.constInt64([0]), B1]);
      start = b.op('Slice', [m, B1, b.constInt64([2 * batchDim])]);
    } else if (len !== batchDim) unsupported(ctx, `mask_index of length ${len} for batch ${batchDim}; expected B or 2B`);
  } else {
    // Run-time length: [end; start] when it is 2B; appending B zeros makes the start 0 when it is B.
    end = b.op('Slice', [m, b.constInt64([0]), B1]);
    const padded = b.op('Concat', [m, b.op('ConstantOfShape', [B1], { value: makeInt64Zero() })], { axis: 0 });
    start = b.op('Slice', [padded, B1, b.op('Add', [B1, B1])]);
  }
  const allowed = positionMask(ctx, { S: q.S, T: q.T, validKeys: end, ...(start ? { firstKey: start } : {}) })!;
  return { name: additiveMask(ctx, allowed, fill, dt), heads: 1 };
}

function makeInt64Zero() {
  return makeTensor('value', DT.INT64, [1], new Uint8Array(8));
}

/**
 * The lowest default-domain opset the attention-family gradients are written for: their masks and
 * positions need Range, ConstantOfShape, integer comparisons and input-form Slice (opset 11).
 * ONNX Runtime's fused attention ops come from its transformer optimizer, which runs on opset 11
 * and newer exports.
 */
export const ATTENTION_MIN_OPSET = 11;

/** Refuses a graph older than `ATTENTION_MIN_OPSET` with a clear error naming the op. */
export function requireAttentionOpset(ctx: GradContext): void {
  if (ctx.opset < ATTENTION_MIN_OPSET) needsOpset(ctx, ATTENTION_MIN_OPSET, `the gradient of ${ctx.node.domain ? `${ctx.node.domain} ` : ''}${ctx.node.opType}`);
}
