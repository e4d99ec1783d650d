/**
 * TensorScatter (ONNX opset 24), the KV-cache update: present = past_cache with `update` written
 * along `axis` at positions w_b, w_b + 1, …, w_b + S − 1 of each batch row b (w = write_indices,
 * zeros when absent; modulo the cache length M in mode 'circular'). With I the index tensor
 * I[b, …, s, …] = (w_b + s) [mod M], shaped like `update`:
 *   d update   = GatherElements(dPresent, I, axis)          (each written position, read back)
 *   d past     = ScatterElements(dPresent, I, 0, axis)      (the positions not overwritten)
 * write_indices gets none. axis 0 is refused: it is the batch axis the indices are per.
 */
import type { GradRule } from '../rule.ts';
import { attrInt, attrString } from '../../onnx/attributes.ts';
import { normAxis } from '../../onnx/ops.ts';
import { hasInput, shapeOf, unsupported, zerosLike } from './shared/helpers.ts';
import { dimScalar, int64Scalar, sequentialPositions } from './shared/attention.ts';

export const tensorScatterGrad: GradRule = {
  opType: 'TensorScatter',
  differentiableInputs: [0, 1],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const needPast = ctx.needsGrad(0);
    const needUpdate = ctx.needsGrad(1);
    if (!needPast && !needUpdate) return [];
    const { b } = ctx;
    const past = ctx.I(0);
    const update = ctx.I(1);
    const rank = ctx.rank(past);
    const axis = normAxis(attrInt(ctx.node, 'axis', -2), rank);
    if (axis === 0) unsupported(ctx, 'axis 0 is the batch axis write_indices index; TensorScatter writes along a later axis');
    const mode = attrString(ctx.node, 'mode', 'linear');
    if (mode !== 'linear' && mode !== 'circular') unsupported(ctx, `mode '${mode}'; expected 'linear' or 'circular'`);
    // Positions written, [B|1, S]: w_b + s, wrapped in circular mode.
    let pos = sequentialPositions(ctx, dimScalar(ctx, update, axis), int64Scalar(ctx, 0));
    if (hasInput(ctx, 2)) pos = b.op('Add', [b.op('Reshape', [ctx.I(2), b.constInt64([-1, 1])]), pos]);
    if (mode === 'circular') pos = b.op('Mod', [pos, dimScalar(ctx, past, axis)]);
    const target = Array.from({ length: rank }, (_, i) => (i === 0 ? 0 : i === axis ? -1 : 1));
    const index = b.op('Expand', [b.op('Reshape', [pos, b.constInt64(target)]), shapeOf(ctx, update)]);
    return [
      needPast ? b.op('ScatterElements', [dY, index, zerosLike(ctx, update)], { axis }) : undefined,
      needUpdate ? b.op('GatherElements', [dY, index], { axis }) : undefined,
    ];
  },
};
