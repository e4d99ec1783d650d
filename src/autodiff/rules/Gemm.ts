/**
 * Gemm: Y = α·A'·B' + β·C, A' = transA ? Aᵀ : A, B' = transB ? Bᵀ : B, C broadcast to [M, N].
 *   dA' = α·dY·B'ᵀ    dB' = α·A'ᵀ·dY    dC = β·unbroadcast(dY, C)
 * and dA = dA'ᵀ when transA (dB likewise), each written as one Gemm with the right transposes:
 *   dA: (tA,tB)=(0,0) Gemm(dY,B,tB)  (0,1) Gemm(dY,B)  (1,0) Gemm(B,dY,tB)  (1,1) Gemm(B,dY,tA,tB)
 *   dB: (0,0) Gemm(A,dY,tA)  (1,0) Gemm(A,dY)  (0,1) Gemm(dY,A,tA)  (1,1) Gemm(dY,A,tA,tB)
 */
import type { GradRule } from '../rule.ts';
import { attrFloat, attrInt, float } from '../../onnx/attributes.ts';
import { scalarOf } from '../../onnx/ops.ts';

export const gemmGrad: GradRule = {
  opType: 'Gemm',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const { b } = ctx;
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const beta = attrFloat(ctx.node, 'beta', 1);
    const tA = attrInt(ctx.node, 'transA', 0);
    const tB = attrInt(ctx.node, 'transB', 0);
    const A = ctx.I(0);
    const B = ctx.I(1);
    const dt = ctx.dtype(ctx.O(0));
    // Gemm's C is optional from opset 11; before that pass a zero scalar.
    const noC = ctx.opset < 11 ? [scalarOf(ctx, 0, dt)] : [];
    const gemm = (x: string, y: string, ta: number, tb: number) =>
      b.op('Gemm', [x, y, ...noC], { ...(ta ? { transA: 1 } : {}), ...(tb ? { transB: 1 } : {}), ...(alpha !== 1 ? { alpha: float(alpha) } : {}) });
    let dA: string | undefined;
    let dB: string | undefined;
    let dC: string | undefined;
    if (ctx.needsGrad(0)) dA = tA ? gemm(B, dY, tB, 1) : gemm(dY, B, 0, tB ? 0 : 1);
    if (ctx.needsGrad(1)) dB = tB ? gemm(dY, A, 1, tA) : gemm(A, dY, tA ? 0 : 1, 0);
    if (ctx.inputCount > 2 && ctx.I(2) && ctx.needsGrad(2)) {
      const g = ctx.unbroadcast(dY, ctx.I(2));
      dC = beta === 1 ? g : b.op('Mul', [g, scalarOf(ctx, beta, dt)]);
    }
    return [dA, dB, dC];
  },
};
