/**
 * DepthToSpace is Reshape → Transpose → Reshape; the gradient runs the three backwards. Both modes
 * pass through the 6-D layout [N, C/b², H, b, W, b] (DCR: from [N, b, b, C/b², H, W] by perm
 * [0, 3, 4, 1, 5, 2]; CRD: from [N, C/b², b, b, H, W] by perm [0, 1, 4, 2, 5, 3]), so
 *   dX = Reshape(Transpose(Reshape(dY, [N, C/b², H, b, W, b]), perm⁻¹), Shape(X))
 * SpaceToDepth runs the same way (`blockShuffleGrad`).
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt, attrString } from '../../onnx/attributes.ts';
import { concatInts, invertPerm } from '../../onnx/ops.ts';
import { dimPiece, reshapeLike, unsupported } from './shared/helpers.ts';

export const depthToSpaceGrad: GradRule = {
  opType: 'DepthToSpace',
  grad(ctx) {
    const perm = attrString(ctx.node, 'mode', 'DCR') === 'CRD' ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
    return blockShuffleGrad(ctx, perm, (x, y, bs) => [dimPiece(ctx, y, 0), dimPiece(ctx, y, 1), dimPiece(ctx, x, 2), bs, dimPiece(ctx, x, 3), bs]);
  },
};

/**
 * Gradient of a rank-4 op computed as Reshape(X, 6-D) → Transpose(perm) → Reshape (DepthToSpace,
 * SpaceToDepth): dY reshaped to the transposed 6-D layout (`dims`, given X, Y and the blocksize),
 * transposed back and reshaped to X.
 */
export function blockShuffleGrad(ctx: GradContext, perm: number[], dims: (x: string, y: string, bs: number) => Array<number | string>): Array<string | undefined> {
  const dY = ctx.dY;
  const b = ctx.b;
  const x = ctx.I(0);
  if (ctx.rank(x) !== 4) unsupported(ctx, 'input of rank other than 4');
  const bs = attrInt(ctx.node, 'blocksize', 1);
  const six = b.op('Reshape', [dY, concatInts(ctx, dims(x, ctx.O(0), bs))]);
  return [reshapeLike(ctx, b.op('Transpose', [six], { perm: invertPerm(perm) }), x)];
}
