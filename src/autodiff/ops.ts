/**
 * Opset-aware emitters for the few ops whose signature changed across opsets (axes moved from
 * attributes to inputs at opset 13 for ReduceSum/Squeeze/Unsqueeze, at 18 for ReduceMean and
 * friends), plus typed constants. Gradient rules and loss heads use these so one rule works on
 * every opset from 11 on.
 */
import type { GraphBuilder } from '../onnx/builder.ts';
import { DataType as DT } from '../onnx/dtype.ts';

/** A scalar constant of a floating element type (full precision for float64). */
export function scalarOf(b: GraphBuilder, value: number, dtype: number): string {
  return dtype === DT.DOUBLE ? b.constDouble([value], []) : b.scalar(value, dtype);
}

/** ReduceSum over `axes` (never empty). */
export function reduceSum(b: GraphBuilder, opset: number, x: string, axes: readonly number[], keepdims: boolean): string {
  if (opset >= 13) return b.op('ReduceSum', [x, b.constInt64([...axes])], { keepdims: keepdims ? 1 : 0 });
  return b.op('ReduceSum', [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
}

/** ReduceSum over every axis to a scalar (keepdims = 0). */
export function reduceSumAll(b: GraphBuilder, x: string): string {
  return b.op('ReduceSum', [x], { keepdims: 0 });
}

export function unsqueeze(b: GraphBuilder, opset: number, x: string, axes: readonly number[]): string {
  if (opset >= 13) return b.op('Unsqueeze', [x, b.constInt64([...axes])]);
  return b.op('Unsqueeze', [x], { axes: [...axes] });
}

export function squeeze(b: GraphBuilder, opset: number, x: string, axes: readonly number[]): string {
  if (opset >= 13) return b.op('Squeeze', [x, b.constInt64([...axes])]);
  return b.op('Squeeze', [x], { axes: [...axes] });
}

/** Transpose that swaps the last two axes of a rank-`rank` tensor. */
export function swapLast2(b: GraphBuilder, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 1] = rank - 2;
  perm[rank - 2] = rank - 1;
  return b.op('Transpose', [x], { perm });
}

/** Normalizes a possibly negative axis. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * `Where(cond, x, 0)` / `Where(cond, 0, x)` with a zero of `dtype`; before opset 9 (no Where),
 * `x · Cast(cond)`.
 */
export function maskGrad(b: GraphBuilder, cond: string, x: string, dtype: number, keepWhere: boolean, opset = 9): string {
  if (opset < 9) {
    const c = keepWhere ? cond : b.op('Not', [cond]);
    return b.op('Mul', [x, b.op('Cast', [c], { to: dtype })]);
  }
  const zero = scalarOf(b, 0, dtype);
  return keepWhere ? b.op('Where', [cond, x, zero]) : b.op('Where', [cond, zero, x]);
}
