/**
 * Gather (indices, input 1, are a stop-gradient edge). dY has shape
 * pre + indices.shape + post, where data has shape pre + [D] + post. The data gradient adds
 * each slice of dY into row indices[j] of a zero tensor:
 *
 * 1. Move the gathered axis of data to the front: work in the layout [D] + pre + post, and
 *    transpose dY to indices.shape + pre + post.
 * 2. Opset ≥ 16: ScatterND(zeros, Unsqueeze(indices, -1), dYᵀ, reduction='add'), with negative
 *    indices wrapped by +D. Before 16, ScatterND cannot add repeated indices, so use
 *    OneHot(indices, D)ᵀ · dYᵀ as one MatMul ([D, N] · [N, rest]); OneHot wraps negatives itself.
 * 3. Transpose back.
 * Scalar indices (rank 0) work the same way (N = 1, no index axes in dY).
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { inFloat32, invertPerm, normAxis, transpose, zerosOfShape } from '../ops.ts';
import { dimOf, dimsOf } from '../shape-helpers.ts';

export const gatherGrad: GradRule = {
  opType: 'Gather',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const b = ctx.b;
    const data = ctx.I(0);
    const dt = ctx.dtype(data);
    const r = ctx.rank(data);
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), r);
    const q = ctx.rank(ctx.O(0)) - r + 1; // rank of indices
    const rest = [...Array(r).keys()].filter((i) => i !== axis);
    const dataPerm = [axis, ...rest];
    const dyPerm = [
      ...Array.from({ length: q }, (_, i) => axis + i),
      ...Array.from({ length: axis }, (_, i) => i),
      ...Array.from({ length: r - 1 - axis }, (_, i) => axis + q + i),
    ];
    const dyT = transpose(ctx, dY, dyPerm);
    const shapeT = dimsOf(ctx, data, dataPerm);
    const D = dimOf(ctx, data, axis);
    const indices = b.op('Cast', [ctx.I(1)], { to: DT.INT64 });

    let accT: string;
    if (ctx.opset >= 16) {
      const dScalar = b.op('Reshape', [D, b.constInt64([], [0])]); // keeps scalar indices scalar
      const wrapped = b.op('Where', [b.op('Less', [indices, b.constInt64([0], [])]), b.op('Add', [indices, dScalar]), indices]);
      const idx = ctx.b.op('Unsqueeze', [wrapped, b.constInt64([-1])]);
      accT = inFloat32(ctx, dt, [dyT], ([u], ct) => b.op('ScatterND', [zerosOfShape(ctx, shapeT, ct), idx, u!], { reduction: 'add' }));
    } else {
      // OneHot needs rank ≥ 1 and its CPU kernels output float32 only: flatten the indices,
      // cast the 0/1 matrix after.
      const flatIdx = b.op('Reshape', [indices, b.constInt64([-1])]);
      const oneHot32 = b.op('OneHot', [flatIdx, D, b.constFloat([0, 1], [2])], { axis: -1 }); // [N, D]
      const oh2 = dt === DT.FLOAT ? oneHot32 : b.op('Cast', [oneHot32], { to: dt });
      // dYᵀ as [N, rest…]: the leading q axes folded into one.
      const restDims = dimsOf(ctx, data, rest);
      const dyN = b.op('Reshape', [dyT, b.op('Concat', [b.constInt64([-1]), restDims], { axis: 0 })]);
      const dyFlat = b.op('Reshape', [dyN, b.constInt64([0, -1])]); // [N, prod(rest)]
      const acc = b.op('MatMul', [b.op('Transpose', [oh2], { perm: [1, 0] }), dyFlat]); // [D, prod(rest)]
      accT = b.op('Reshape', [acc, shapeT]);
    }
    return [transpose(ctx, accT, invertPerm(dataPerm))];
  },
};
