/**
 * SpaceToDepth is Reshape → Transpose → Reshape through [N, C, H/b, b, W/b, b] and perm
 * [0, 3, 5, 1, 2, 4] (giving [N, b, b, C, H/b, W/b]); the gradient runs the three backwards:
 *   dX = Reshape(Transpose(Reshape(dY, [N, b, b, C, H/b, W/b]), perm⁻¹), Shape(X))
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { concatInts, invertPerm } from '../ops.ts';
import { dimOf, reshapeLike, unsupported } from '../shape-helpers.ts';

export const spaceToDepthGrad: GradRule = {
  opType: 'SpaceToDepth',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    if (ctx.rank(x) !== 4) unsupported(ctx, 'input of rank other than 4');
    const bs = attrInt(ctx.node, 'blocksize', 1);
    const dim = (name: string, axis: number) => {
      const d = ctx.shape(name)[axis];
      return typeof d === 'number' ? d : dimOf(ctx, name, axis);
    };
    const y = ctx.O(0);
    const six = b.op('Reshape', [dY, concatInts(ctx, [dim(x, 0), bs, bs, dim(x, 1), dim(y, 2), dim(y, 3)])]);
    return [reshapeLike(ctx, b.op('Transpose', [six], { perm: invertPerm([0, 3, 5, 1, 2, 4]) }), x)];
  },
};
