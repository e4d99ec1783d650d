/**
 * Emitters that need only a graph builder and the opset: typed constants, the ops whose axes
 * moved from attribute to input between opsets (ReduceSum/Squeeze/Unsqueeze/Split at 13,
 * ReduceMean/ReduceProd and the other reductions at 18), Transpose, zeros of a run-time shape,
 * 1-D int64 shape arithmetic and float32 detours for kernels some execution providers lack in
 * half precision. Gradient rules pass their `GradContext` (it is an `Emitter`); the broadcast
 * undoing and the loss heads pass `{ b, opset }`. One rule thus works on every opset from 11 on.
 *
 * Helpers that read a forward node (its probed shapes, attributes, inputs) live in
 * shape-helpers.ts.
 */
import type { GraphBuilder } from './builder.ts';
import { DataType as DT, float32ToBytes } from './dtype.ts';
import { makeTensor } from './tensor.ts';
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

/** Zeros of element type `dt` and run-time shape `shape` (a 1-D int64 tensor). */
export function zerosOfShape(e: Emitter, shape: string, dt: number): string {
  const direct = dt !== DT.BFLOAT16 || e.opset >= 20;
  const valueType = direct ? dt : DT.FLOAT;
  const value = makeTensor('value', valueType, [1], float32ToBytes(Float32Array.of(0), valueType));
  const z = e.b.op('ConstantOfShape', [shape], { value });
  return direct ? z : e.b.op('Cast', [z], { to: dt });
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
