/**
 * Emitters that need only a graph builder and the opset: typed constants, the ops whose axes
 * moved from attribute to input between opsets (ReduceSum/Squeeze/Unsqueeze/Split at 13,
 * ReduceMean/ReduceProd and the other reductions at 18, Slice at 10, Pad at 11), Transpose,
 * zeros of a run-time shape, 1-D int64 shape arithmetic and float32 detours for kernels some
 * execution providers lack in half precision. Gradient rules pass their `GradContext` (it is an
 * `Emitter`); the broadcast undoing and the loss heads pass `{ b, opset }`.
 *
 * Every emitter produces ops that exist, with those attributes, at `e.opset`, down to opset 7
 * (the lowest a gradient graph is built at: before 7, Add/Sub/Mul/Div broadcast only through a
 * `broadcast` attribute and onnxruntime has no kernels for them; see opset-raise.ts). Where a
 * newer op has no older equivalent the emitter builds one from older ops (Where → Mul by a 0/1
 * mask before 9, Expand → Tile before 8, Equal on floats → ¬(a < b ∨ a > b) before 11, Sign,
 * OneHot → Equal against a constant range before 9, ConstantOfShape → Tile of a zero before 9),
 * or, where that needs a static size it does not have, fails with E_UNSUPPORTED_OP naming the
 * opset it needs.
 *
 * Helpers that read a forward node (its probed shapes, attributes, inputs) live in
 * shape-helpers.ts.
 */
import type { GraphBuilder } from './builder.ts';
import { DataType as DT, float32ToBytes } from './dtype.ts';
import { makeTensor } from './tensor.ts';
import type { AttrValue } from './attributes.ts';
import { PeanutError } from '../errors.ts';

/** Where backward (or loss) nodes go: a builder and the default-domain opset of the graph. */
export interface Emitter {
  readonly b: GraphBuilder;
  readonly opset: number;
}

/** A scalar constant of a floating element type (full precision for float64). */
export function scalarOf(e: Emitter, value: number, dtype: number): string {
  return dtype === DT.DOUBLE ? e.b.constDouble([value], []) : e.b.scalar(value, dtype);
}

/** Normalizes a possibly negative axis; throws E_GRAPH when it is out of range for `rank`. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) throw new PeanutError('E_GRAPH', `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Reduce ops `reduce()` emits. ReduceSum takes axes as an input from opset 13, the others from 18. */
export type ReduceOp = 'ReduceSum' | 'ReduceMean' | 'ReduceProd';

/**
 * Axes to reduce: a constant list ([] = nothing to reduce), `'all'`, or the name of a 1-D int64
 * tensor (only where the opset takes axes as an input).
 */
export type ReduceArg = readonly number[] | 'all' | { name: string };

/** `op` over `axes` (see `ReduceArg`; [] returns x). */
export function reduce(e: Emitter, op: ReduceOp, x: string, axes: ReduceArg, keepdims: 0 | 1): string {
  if (Array.isArray(axes) && axes.length === 0) return x;
  const since = op === 'ReduceSum' ? 13 : 18;
  const asInput = e.opset >= since;
  if (axes === 'all') return e.b.op(op, [x], { keepdims });
  if (!Array.isArray(axes)) {
    const name = (axes as { name: string }).name;
    if (!asInput) throw new PeanutError('E_UNSUPPORTED_OP', `${op} needs constant axes before opset ${since}`);
    return e.b.op(op, [x, name], { keepdims });
  }
  const list = [...(axes as readonly number[])];
  if (asInput) return e.b.op(op, [x, e.b.constInt64(list)], { keepdims });
  return e.b.op(op, [x], { axes: list, keepdims });
}

/** Unsqueeze with constant axes (attribute before opset 13, input from 13); [] returns x. */
export function unsqueeze(e: Emitter, x: string, axes: readonly number[]): string {
  if (axes.length === 0) return x;
  if (e.opset < 13) return e.b.op('Unsqueeze', [x], { axes: [...axes] });
  return e.b.op('Unsqueeze', [x, e.b.constInt64([...axes])]);
}

/** Squeeze with constant axes (attribute before opset 13, input from 13). */
export function squeeze(e: Emitter, x: string, axes: readonly number[]): string {
  if (e.opset < 13) return e.b.op('Squeeze', [x], { axes: [...axes] });
  return e.b.op('Squeeze', [x, e.b.constInt64([...axes])]);
}

/** Inverse of a permutation. */
export function invertPerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

export function isIdentityPerm(perm: readonly number[]): boolean {
  return perm.every((p, i) => p === i);
}

/** Transpose by `perm`; x itself for the identity permutation. */
export function transpose(e: Emitter, x: string, perm: readonly number[]): string {
  return isIdentityPerm(perm) ? x : e.b.op('Transpose', [x], { perm: [...perm] });
}

/** Transpose that swaps the last two axes of a rank-`rank` tensor. */
export function swapLast2(e: Emitter, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return transpose(e, x, perm);
}

/**
 * `Where(cond, x, 0)` / `Where(cond, 0, x)` with a zero of `dtype`; before opset 9 (no Where),
 * `x · Cast(cond)`.
 */
export function maskGrad(e: Emitter, cond: string, x: string, dtype: number, keepWhere: boolean): string {
  const b = e.b;
  if (e.opset < 9) {
    const c = keepWhere ? cond : b.op('Not', [cond]);
    return b.op('Mul', [x, b.op('Cast', [c], { to: dtype })]);
  }
  const zero = scalarOf(e, 0, dtype);
  return keepWhere ? b.op('Where', [cond, x, zero]) : b.op('Where', [cond, zero, x]);
}

/**
 * Concatenates 1-D int64 pieces (numbers become constants); all-number lists become one constant.
 */
export function concatInts(e: Emitter, pieces: ReadonlyArray<number | string>): string {
  const b = e.b;
  if (pieces.every((p) => typeof p === 'number')) return b.constInt64(pieces as number[]);
  // Merge runs of numbers into one constant each.
  const parts: string[] = [];
  let run: number[] = [];
  for (const p of pieces) {
    if (typeof p === 'number') run.push(p);
    else {
      if (run.length) parts.push(b.constInt64(run));
      run = [];
      parts.push(p);
    }
  }
  if (run.length) parts.push(b.constInt64(run));
  return parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis: 0 });
}

/** Throws E_UNSUPPORTED_OP: `what` needs opset `since`, the graph imports `e.opset`. */
export function needsOpset(e: Emitter, since: number, what: string): never {
  throw new PeanutError('E_UNSUPPORTED_OP', `${what} needs opset ${since} or newer; the model imports opset ${e.opset} (re-export it with opset ${since} or newer)`);
}

/** `Range(start, limit, delta)` (opset 11; no older form builds a sequence of run-time length). */
export function range(e: Emitter, start: string, limit: string, delta: string): string {
  if (e.opset < 11) needsOpset(e, 11, 'a Range of run-time length');
  return e.b.op('Range', [start, limit, delta]);
}

/**
 * Zeros of element type `dt` and run-time shape `shape` (a 1-D int64 tensor of `rank` entries):
 * ConstantOfShape from opset 9, a zero of rank `rank` tiled by `shape` before.
 */
export function zerosOfShape(e: Emitter, shape: string, dt: number, rank?: number): string {
  if (e.opset < 9) {
    if (rank === undefined) needsOpset(e, 9, 'zeros of a run-time shape of unknown rank (ConstantOfShape)');
    const zero = scalarOf(e, 0, dt === DT.BFLOAT16 ? DT.FLOAT : dt);
    const z = e.b.op('Tile', [rank === 0 ? zero : e.b.op('Reshape', [zero, e.b.constInt64(new Array<number>(rank).fill(1))]), shape]);
    return dt === DT.BFLOAT16 ? e.b.op('Cast', [z], { to: dt }) : z;
  }
  const direct = dt !== DT.BFLOAT16 || e.opset >= 20;
  const valueType = direct ? dt : DT.FLOAT;
  const value = makeTensor('value', valueType, [1], float32ToBytes(Float32Array.of(0), valueType));
  const z = e.b.op('ConstantOfShape', [shape], { value });
  return direct ? z : e.b.op('Cast', [z], { to: dt });
}

/**
 * `x` (of rank `rank`, each dim 1 or the target's) broadcast to the run-time shape `shape`:
 * Expand from opset 8, Tile by shape / Shape(x) before.
 */
export function expandTo(e: Emitter, x: string, shape: string, rank: number): string {
  if (e.opset >= 8) return e.b.op('Expand', [x, shape]);
  if (rank === 0) return x;
  return e.b.op('Tile', [x, e.b.op('Div', [shape, e.b.op('Shape', [x])])]);
}

/** Where(cond, a, b) from opset 9; before, a·[cond] + b·[¬cond] (exact for finite a and b). */
export function select(e: Emitter, cond: string, a: string, b: string, dt: number): string {
  if (e.opset >= 9) return e.b.op('Where', [cond, a, b]);
  const on = e.b.op('Cast', [cond], { to: dt });
  const off = e.b.op('Cast', [e.b.op('Not', [cond])], { to: dt });
  return e.b.op('Add', [e.b.op('Mul', [a, on]), e.b.op('Mul', [b, off])]);
}

/** a == b for floating tensors: Equal from opset 11, ¬(a < b ∨ a > b) before. */
export function equalFloat(e: Emitter, a: string, b: string): string {
  if (e.opset >= 11) return e.b.op('Equal', [a, b]);
  return e.b.op('Not', [e.b.op('Or', [e.b.op('Less', [a, b]), e.b.op('Greater', [a, b])])]);
}

/** sign(x) in x's type `dt`: Sign from opset 9, [x > 0] − [x < 0] before. */
export function sign(e: Emitter, x: string, dt: number): string {
  if (e.opset >= 9) return e.b.op('Sign', [x]);
  const zero = scalarOf(e, 0, dt);
  const pos = e.b.op('Cast', [e.b.op('Greater', [x, zero])], { to: dt });
  const neg = e.b.op('Cast', [e.b.op('Less', [x, zero])], { to: dt });
  return e.b.op('Sub', [pos, neg]);
}

/**
 * OneHot(indices, depth) along a new last axis as 0/1 of type `dt` (indices int64, negative
 * ones counting from the end). Opset ≥ 9: the OneHot op, whose CPU kernels output float32 only
 * (cast after). Before: Equal against a constant range 0…depth−1 (and its shift by −depth, for
 * negative indices), so `depth` must be a number there.
 */
export function oneHot(e: Emitter, indices: string, depth: number | string, dt: number): string {
  const b = e.b;
  if (e.opset >= 9) {
    const d = typeof depth === 'number' ? b.constInt64([depth]) : depth;
    const oneHot32 = b.op('OneHot', [indices, d, b.constFloat([0, 1], [2])], { axis: -1 });
    return dt === DT.FLOAT ? oneHot32 : b.op('Cast', [oneHot32], { to: dt });
  }
  if (typeof depth !== 'number') needsOpset(e, 9, 'a one-hot encoding of a run-time depth (OneHot)');
  const range = Array.from({ length: depth }, (_, i) => i);
  // A trailing axis of 1 without knowing the rank (negative Unsqueeze axes need opset 11).
  const idx = b.op('Reshape', [indices, b.op('Concat', [b.op('Shape', [indices]), b.constInt64([1])], { axis: 0 })]);
  const hit = b.op('Or', [b.op('Equal', [idx, b.constInt64(range)]), b.op('Equal', [idx, b.constInt64(range.map((v) => v - depth))])]);
  return b.op('Cast', [hit], { to: dt });
}

/**
 * Gemm(a, b) with the given attributes and no C: C is optional from opset 11; before, a zero
 * scalar of element type `dt` (unidirectionally broadcast) stands in.
 */
export function gemm(e: Emitter, a: string, b: string, attrs: Record<string, AttrValue | undefined>, dt: number): string {
  return e.b.op('Gemm', e.opset >= 11 ? [a, b] : [a, b, scalarOf(e, 0, dt)], attrs);
}

/**
 * Elementwise min/max of int64 tensors: Min/Max take integers from opset 12; before, a 0/1 pick
 * by a float64 comparison (right for the sizes and the ±2⁶² clamped indices it is used on).
 */
export function intMinMax(e: Emitter, op: 'Min' | 'Max', a: string, b: string): string {
  if (e.opset >= 12) return e.b.op(op, [a, b]);
  // m = [a < b] compared in float64 (Less takes integers from 9), then picked in int64.
  const d = (v: string) => e.b.op('Cast', [v], { to: DT.DOUBLE });
  const m = e.b.op('Cast', [e.b.op('Less', [d(a), d(b)])], { to: DT.INT64 });
  const notM = e.b.op('Sub', [e.b.constInt64([1], []), m]);
  const [first, second] = op === 'Min' ? [a, b] : [b, a];
  return e.b.op('Add', [e.b.op('Mul', [first, m]), e.b.op('Mul', [second, notM])]);
}

/** Slice with constant starts/ends/axes (unit steps): inputs from opset 10, attributes before. */
export function sliceConst(e: Emitter, x: string, starts: readonly number[], ends: readonly number[], axes: readonly number[]): string {
  if (e.opset >= 10) return e.b.op('Slice', [x, e.b.constInt64([...starts]), e.b.constInt64([...ends]), e.b.constInt64([...axes])]);
  return e.b.op('Slice', [x], { starts: [...starts], ends: [...ends], axes: [...axes] });
}

/**
 * Constant-mode Pad with constant pads (begin…, end… over every axis; negative pads crop):
 * pads as an input from opset 11, the `pads` attribute from 2.
 */
export function padConst(e: Emitter, x: string, pads: readonly number[]): string {
  if (e.opset >= 11) return e.b.op('Pad', [x, e.b.constInt64([...pads])], { mode: 'constant' });
  return e.b.op('Pad', [x], { mode: 'constant', pads: [...pads] });
}

/**
 * `updates` written into `data` at `indices` along `axis`, for indices that never repeat:
 * ScatterElements from opset 11, Scatter (its earlier name) at 9 and 10.
 */
export function scatterElements(e: Emitter, data: string, indices: string, updates: string, axis: number): string {
  if (e.opset >= 11) return e.b.op('ScatterElements', [data, indices, updates], { axis });
  if (e.opset >= 9) return e.b.op('Scatter', [data, indices, updates], { axis });
  return needsOpset(e, 9, 'writing values at indices (Scatter)');
}

/**
 * Runs `emit` on float32 copies of `values` when `dt` is a half type, casting its result back:
 * for ops some execution providers lack in half precision (e.g. the CPU EP's ScatterND and
 * ScatterElements with reduction='add'); a plain call otherwise.
 */
export function inFloat32(e: Emitter, dt: number, values: string[], emit: (vs: string[], computeType: number) => string): string {
  if (dt !== DT.FLOAT16 && dt !== DT.BFLOAT16) return emit(values, dt);
  const out = emit(values.map((v) => e.b.op('Cast', [v], { to: DT.FLOAT })), DT.FLOAT);
  return e.b.op('Cast', [out], { to: dt });
}
