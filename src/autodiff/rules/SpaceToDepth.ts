/**
 * SpaceToDepth is Reshape → Transpose → Reshape through [N, C, H/b, b, W/b, b] and perm
 * [0, 3, 5, 1, 2, 4] (giving [N, b, b, C, H/b, W/b]); the gradient runs the three backwards
 * (`blockShuffleGrad`, see DepthToSpace.ts):
 *   dX = Reshape(Transpose(Reshape(dY, [N, b, b, C, H/b, W/b]), perm⁻¹), Shape(X))
 */
import type { GradRule } from '../rule.ts';
import { dimPiece } from './shared/helpers.ts';
import { blockShuffleGrad } from './DepthToSpace.ts';

export const spaceToDepthGrad: GradRule = {
  opType: 'SpaceToDepth',
  grad: (ctx) => blockShuffleGrad(ctx, [0, 3, 5, 1, 2, 4], (x, y, bs) => [dimPiece(ctx, x, 0), bs, bs, dimPiece(ctx, x, 1), dimPiece(ctx, y, 2), dimPiece(ctx, y, 3)]),
};
