/**
 * MatMul (numpy semantics: batched, broadcast batch dims, 1-D operands promoted):
 *   Y = A · B        dA = dY · Bᵀ        dB = Aᵀ · dY
 * then summed over the batch dims each operand was broadcast along.
 *
 * Cases:
 *   1. both 2-D: Gemm with transB / transA (no Transpose node).
 *   2. B 2-D [K, N] (a linear layer), A N-D: both fold the batch dims into rows, one GEMM each:
 *      dA = Reshape(Gemm(Reshape(dY, [−1, N]), B, transB), dY's leading dims + [K]) and
 *      dB = Gemm(Reshape(A, [−1, K]), Reshape(dY, [−1, N]), transA) — no Transpose node (one of a
 *      frozen weight would be folded into a stored transposed copy) and no batched product and
 *      reduction. K and N are static weight dims.
 *   3. otherwise: batched MatMul with the last two axes swapped, then un-broadcast.
 * 1-D operands are unsqueezed to 2-D first (A [K] -> [1, K], B [K] -> [K, 1]) and squeezed back.
 * A weight that needs no gradient (a frozen layer) gets none: only the branch that is needed runs.
 */
import type { GradContext, GradRule, StaticShape } from '../rule.ts';
import { unbroadcast } from '../broadcast.ts';
import { concatInts, gemm, sliceConst, squeeze, swapLast2, unsqueeze } from '../../onnx/ops.ts';
import { isStatic } from './shared/helpers.ts';

export const matMulGrad: GradRule = {
  opType: 'MatMul',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const needA = ctx.needsGrad(0);
    const needB = ctx.needsGrad(1);
    if (!needA && !needB) return [];
    const A = ctx.I(0);
    const B = ctx.I(1);
    const [dA, dB] = matMulGrads(ctx, { a: A, aShape: ctx.shape(A), b: B, bShape: ctx.shape(B), dY, yShape: ctx.shape(ctx.O(0)), needA, needB });
    return [needA ? dA : undefined, needB ? dB : undefined];
  },
};

export interface MatMulOperands {
  a: string;
  aShape: StaticShape;
  b: string;
  bShape: StaticShape;
  /** Gradient of Y = a · b, shaped `yShape`. */
  dY: string;
  yShape: StaticShape;
  needA: boolean;
  needB: boolean;
}

/** Gradients of both operands of a numpy-semantics matrix product (see the cases above). */
export function matMulGrads(ctx: GradContext, m: MatMulOperands): [string | undefined, string | undefined] {
  const { b, opset } = ctx;
  const { needA, needB } = m;
  const dt = ctx.dtype(ctx.O(0)); // the product's element type (the rules calling this all output it)
  const ra0 = m.aShape.length;
  const rb0 = m.bShape.length;
  if (ra0 === 1 && rb0 === 1) {
    // dot product: Y is a scalar
    return [needA ? b.op('Mul', [m.dY, m.b]) : undefined, needB ? b.op('Mul', [m.dY, m.a]) : undefined];
  }
  let a = m.a;
  let bb = m.b;
  let dY = m.dY;
  let aShape = m.aShape;
  let bShape = m.bShape;
  let yShape = m.yShape;
  if (ra0 === 1) {
    a = unsqueeze(ctx, m.a, [0]);
    aShape = [1, ...aShape];
    dY = unsqueeze(ctx, dY, [yShape.length - 1]);
    yShape = [...yShape.slice(0, -1), 1, yShape[yShape.length - 1]!];
  }
  if (rb0 === 1) {
    bb = unsqueeze(ctx, m.b, [1]);
    bShape = [...bShape, 1];
    dY = unsqueeze(ctx, dY, [yShape.length]);
    yShape = [...yShape, 1];
  }
  const ra = aShape.length;
  const rb = bShape.length;
  const ry = yShape.length;
  const K = aShape[ra - 1]!;
  const N = yShape[ry - 1]!;
  let dA: string | undefined;
  let dB: string | undefined;
  if (ra === 2 && rb === 2) {
    if (needA) dA = gemm(ctx, dY, bb, { transB: 1 }, dt);
    if (needB) dB = gemm(ctx, a, dY, { transA: 1 }, dt);
  } else {
    if (needA && rb === 2 && typeof N === 'number' && typeof K === 'number') {
      // Gemm with transB, not MatMul(dY, Transpose(B)): ONNX Runtime folds a Transpose of a
      // frozen weight into a transposed copy it keeps for the session's life. dA's shape comes
      // from dY (live here); Shape(A) would keep A alive until now only for its shape.
      const dY2 = b.op('Reshape', [dY, b.constInt64([-1, N])]);
      const aDims = isStatic(aShape) ? b.constInt64([...aShape]) : concatInts(ctx, [sliceConst(ctx, b.op('Shape', [dY]), [0], [ry - 1], [0]), K as number]);
      dA = b.op('Reshape', [gemm(ctx, dY2, bb, { transB: 1 }, dt), aDims]);
    } else if (needA) {
      const g = b.op('MatMul', [dY, swapLast2(ctx, bb, rb)]);
      dA = unbroadcast(b, opset, g, [...yShape.slice(0, -1), K], aShape);
    }
    if (needB) {
      if (rb === 2 && typeof K === 'number' && typeof N === 'number') {
        const a2 = b.op('Reshape', [a, b.constInt64([-1, K])]);
        const dY2 = b.op('Reshape', [dY, b.constInt64([-1, N])]);
        dB = gemm(ctx, a2, dY2, { transA: 1 }, dt);
      } else {
        const g = b.op('MatMul', [swapLast2(ctx, a, ra), dY]);
        dB = unbroadcast(b, opset, g, [...yShape.slice(0, -2), K, N], bShape);
      }
    }
  }
  if (dA && ra0 === 1) dA = squeeze(ctx, dA, [0]);
  if (dB && rb0 === 1) dB = squeeze(ctx, dB, [1]);
  return [dA, dB];
}
