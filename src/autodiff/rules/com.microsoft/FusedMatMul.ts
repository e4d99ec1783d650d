/**
 * com.microsoft FusedMatMul (what ONNX Runtime's optimizer makes of Transpose + MatMul + Mul):
 *   Y = α · A' · B',  A' = transA ? swapLast2(A) : A,  B' likewise
 * With P = A'·B' (a plain MatMul): dA' = α·dP-gradient of A', dA = transA ? swapLast2(dA') : dA'.
 * Written with standard ops (Transpose, MatMul/Gemm, Mul); transBatchA/B (batch-axis
 * transposes) are refused.
 */
import type { GradRule, StaticShape } from '../../rule.ts';
import { attrFloat, attrInt } from '../../../onnx/attributes.ts';
import { scalarOf, swapLast2 } from '../../../onnx/ops.ts';
import { matMulGrads } from '../MatMul.ts';
import { PeanutError } from '../../../errors.ts';

const swapShape = (s: StaticShape): StaticShape => (s.length < 2 ? s : [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!]);

export const fusedMatMulGrad: GradRule = {
  opType: 'FusedMatMul',
  domain: 'com.microsoft',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const needA = ctx.needsGrad(0);
    const needB = ctx.needsGrad(1);
    if (!needA && !needB) return [];
    if (attrInt(ctx.node, 'transBatchA', 0) || attrInt(ctx.node, 'transBatchB', 0)) {
      throw new PeanutError('E_UNSUPPORTED_OP', `FusedMatMul node '${ctx.node.name}' transposes batch axes (transBatchA/B), which has no gradient rule; export the model without ONNX Runtime's graph optimizations`);
    }
    const { b } = ctx;
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const tA = attrInt(ctx.node, 'transA', 0) === 1;
    const tB = attrInt(ctx.node, 'transB', 0) === 1;
    const A = ctx.I(0);
    const B = ctx.I(1);
    const aShape = ctx.shape(A);
    const bShape = ctx.shape(B);
    const dt = ctx.dtype(ctx.O(0));
    const dP = alpha === 1 ? dY : b.op('Mul', [dY, scalarOf(ctx, alpha, dt)]);
    const [dA1, dB1] = matMulGrads(ctx, {
      a: tA && aShape.length >= 2 ? swapLast2(ctx, A, aShape.length) : A,
      aShape: tA ? swapShape(aShape) : aShape,
      b: tB && bShape.length >= 2 ? swapLast2(ctx, B, bShape.length) : B,
      bShape: tB ? swapShape(bShape) : bShape,
      dY: dP,
      yShape: ctx.shape(ctx.O(0)),
      needA,
      needB,
    });
    const dA = dA1 && tA && aShape.length >= 2 ? swapLast2(ctx, dA1, aShape.length) : dA1;
    const dB = dB1 && tB && bShape.length >= 2 ? swapLast2(ctx, dB1, bShape.length) : dB1;
    return [needA ? dA : undefined, needB ? dB : undefined];
  },
};
