/**
 * DepthToSpace is Reshape → Transpose → Reshape; the gradient runs the three backwards. Both modes
 * pass through the 6-D layout [N, C/b², H, b, W, b] (DCR: from [N, b, b, C/b², H, W] by perm
 * [0, 3, 4, 1, 5, 2]; CRD: from [N, C/b², b, b, H, W] by perm [0, 1, 4, 2, 5, 3]), so
 *   dX = Reshape(Transpose(Reshape(dY, [N, C/b², H, b, W, b]), perm⁻¹), Shape(X))
 */
import type { GradRule } from '../rule.ts';
import { attrInt, attrString } from '../../onnx/attributes.ts';
import { concatInts, invertPerm } from '../ops.ts';
import { dimOf, reshapeLike, unsupported } from '../shape-helpers.ts';

export const depthToSpaceGrad: GradRule = {
  opType: 'DepthToSpace',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    const b = ctx.b;
    const x = ctx.I(0);
    if (ctx.rank(x) !== 4) unsupported(ctx, 'input of rank other than 4');
    const bs = attrInt(ctx.node, 'blocksize', 1);
    const mode = attrString(ctx.node, 'mode', 'DCR');
    const perm = mode === 'CRD' ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
    const dim = (name: string, axis: number) => {
      const d = ctx.shape(name)[axis];
      return typeof d === 'number' ? d : dimOf(ctx, name, axis);
    };
    const y = ctx.O(0);
    const six = b.op('Reshape', [dY, concatInts(ctx, [dim(y, 0), dim(y, 1), dim(x, 2), bs, dim(x, 3), bs])]);
    return [reshapeLike(ctx, b.op('Transpose', [six], { perm: invertPerm(perm) }), x)];
  },
};
