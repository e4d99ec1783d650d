/**
 * com.microsoft RotaryEmbedding (inputs: input, position_ids, cos_cache, sin_cache): the ONNX
 * RotaryEmbedding rotation with the inputs in another order; position_ids is [B, S] or a start
 * offset [1] (positions offset … offset + S − 1). Same gradient body (rules/RotaryEmbedding.ts):
 * dX = the inverse rotation of dY. `scale` does not enter the rotation in ONNX Runtime's kernels;
 * is_packed_batching=1 is refused (ragged batches).
 */
import type { GradRule } from '../../rule.ts';
import { rotaryEmbeddingGrad } from '../RotaryEmbedding.ts';

export const msRotaryEmbeddingGrad: GradRule = {
  opType: 'RotaryEmbedding',
  domain: 'com.microsoft',
  differentiableInputs: [0],
  grad: (ctx) => rotaryEmbeddingGrad(ctx, { x: 0, positions: 1, cos: 2, sin: 3 }),
};
