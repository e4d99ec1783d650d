/**
 * RotaryEmbedding (ONNX opset 23; the com.microsoft op shares this body): each pair of the first
 * R channels of every head is rotated by the angle of its token's position,
 *   (x1, x2) → (c·x1 − s·x2, s·x1 + c·x2),  c, s = cos_cache/sin_cache rows of the position,
 * with pairs (x[2k], x[2k+1]) when interleaved, else (x[k], x[k + R/2]); channels R… pass through.
 * The rotation is orthogonal, so dX = Rᵀ dY: the same rotation by −angle (see attention-common).
 *
 * Forms: X 4-D [B, N, S, H] or 3-D [B, S, N·H] (num_heads, or head_size from the cache width);
 * rotary_embedding_dim R (0 = all of head_size); positions from position_ids [B, S], a start
 * offset [1] (com.microsoft), or none (ONNX: the caches are already [B, S, R/2]).
 * The caches and positions get no gradient: they are fixed tables of the position encoding.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { hasInput, unsupported } from './shared/helpers.ts';
import { dimScalar, gatherRotaryTables, rotate, sequentialPositions, staticDim, toInt64, unsqueezeTables, type RotaryTables } from './shared/attention.ts';

/** Where a RotaryEmbedding node keeps its inputs (the two domains order them differently). */
export interface RotaryInputs {
  x: number;
  cos: number;
  sin: number;
  /** Index of position_ids, if the op has that input. */
  positions: number;
}

/** dX of a RotaryEmbedding node whose inputs sit at `at`. */
export function rotaryEmbeddingGrad(ctx: GradContext, at: RotaryInputs): Array<string | undefined> {
  const dY = ctx.GO(0);
  if (!dY || !ctx.needsGrad(at.x)) return [];
  const { b } = ctx;
  const x = ctx.I(at.x);
  const rank = ctx.rank(x);
  if (rank !== 3 && rank !== 4) unsupported(ctx, `input of rank ${rank}; RotaryEmbedding takes a 3-D or 4-D input`);
  if (attrInt(ctx.node, 'is_packed_batching', 0) !== 0) unsupported(ctx, 'is_packed_batching=1 (ragged batches) has no gradient rule; export with padded batches');
  const cosCache = ctx.I(at.cos);
  const sinCache = ctx.I(at.sin);
  const half = staticDim(ctx, cosCache, ctx.rank(cosCache) - 1, 'rotary table width');
  const R = attrInt(ctx.node, 'rotary_embedding_dim', 0) || 2 * half;
  if (R !== 2 * half) unsupported(ctx, `rotary_embedding_dim ${R} does not match the cos/sin cache width ${half}`);
  // Work in [B, N, S, H] (4-D input) or [B, S, N, H] (3-D input, heads split off the last axis).
  let headSize: number;
  let x4 = dY;
  if (rank === 4) headSize = staticDim(ctx, x, 3, 'head size');
  else {
    const hidden = staticDim(ctx, x, 2, 'hidden size');
    // Heads: num_heads, or (without it, com.microsoft) head_size = the full rotary width.
    const numHeads = attrInt(ctx.node, 'num_heads', 0);
    const heads = numHeads > 0 ? numHeads : attrInt(ctx.node, 'rotary_embedding_dim', 0) === 0 ? hidden / R : NaN;
    if (!Number.isInteger(heads) || heads <= 0 || hidden % heads !== 0) unsupported(ctx, `cannot tell the heads of a 3-D input of width ${hidden}: set num_heads`);
    headSize = hidden / heads;
    x4 = b.op('Reshape', [dY, b.constInt64([0, 0, heads, headSize])]);
  }
  const seqAxis = rank === 4 ? 2 : 1;
  let tables: RotaryTables;
  const hasPositions = at.positions >= 0 && hasInput(ctx, at.positions);
  if (!hasPositions) {
    // ONNX form without position_ids: the caches are the per-token tables [B, S, R/2].
    tables = { cos: cosCache, sin: sinCache, rank: 3 };
  } else {
    const pos = toInt64(ctx, ctx.I(at.positions));
    const posRank = ctx.rank(pos);
    if (posRank === 1) tables = gatherRotaryTables(ctx, cosCache, sinCache, sequentialPositions(ctx, dimScalar(ctx, x, seqAxis), pos), 2);
    else if (posRank === 2) tables = gatherRotaryTables(ctx, cosCache, sinCache, pos, 2);
    else unsupported(ctx, `position_ids of rank ${posRank}; expected [B, S] or a start offset [1]`);
  }
  // Tables are [B|1, S, R/2]; line them up with the token axis of the working layout.
  tables = unsqueezeTables(ctx, tables!, [rank === 4 ? 1 : 2]);
  const dX4 = rotate(ctx, x4, tables, { interleaved: attrInt(ctx.node, 'interleaved', 0) === 1, rotaryDim: R, headSize }, 4, true);
  return [...new Array<undefined>(at.x), rank === 4 ? dX4 : b.op('Reshape', [dX4, b.constInt64([0, 0, -1])])];
}

export const rotaryEmbeddingGradOnnx: GradRule = {
  opType: 'RotaryEmbedding',
  differentiableInputs: [0],
  grad: (ctx) => rotaryEmbeddingGrad(ctx, { x: 0, cos: 1, sin: 2, positions: 3 }),
};
