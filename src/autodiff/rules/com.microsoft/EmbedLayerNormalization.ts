/**
 * com.microsoft EmbedLayerNormalization (ONNX Runtime's fusion of BERT's embedding layer):
 *   E = word[input_ids] + position[position_ids] (+ segment[segment_ids])
 *   Y = LayerNorm(E, last axis)·γ + β
 * Inputs: input_ids, segment_ids?, word_embedding, position_embedding, segment_embedding?,
 * gamma, beta, mask?, position_ids? ([B, S] or [1, S]; absent: 0 … S−1). Outputs: Y,
 * mask_index (int32, from the mask; it carries no gradient, whatever mask_index_type says)
 * and embedding_sum? = E, whose gradient dE₂ is added:
 *   dE = layerNormGrad(dY) + dE₂            (normalization.ts, `trailingNormGrads`)
 *   dword = rows of dE added at input_ids, dposition at the position ids (summed over the batch
 *   first for [1, S] ids), dsegment at segment_ids    (the Gather gradient, `gatherDataGrad`)
 *   dγ = Σ dY·x̂,  dβ = Σ dY
 * The ids and the mask are integer inputs: no gradient. E is read from embedding_sum when the
 * node outputs it, else recomputed with Gathers. epsilon defaults to 1e-12 (the contrib schema's).
 */
import type { GradContext, GradRule } from '../../rule.ts';
import { attrFloat } from '../../../onnx/attributes.ts';
import { DataType as DT } from '../../../onnx/dtype.ts';
import { needsOpset, reduce, unsqueeze } from '../../../onnx/ops.ts';
import { trailingNormGrads } from '../shared/normalization.ts';
import { dimOf, hasInput, optionalGO } from '../shared/helpers.ts';
import { gatherDataGrad } from '../Gather.ts';

const DEFAULT_EPSILON = 1e-12;
const [IDS, SEG_IDS, WORD, POS, SEG, GAMMA, BETA, , POS_IDS] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;

/** Position ids as an int64 tensor of rank 2: the input, or 0 … S−1 as [1, S]. */
function positionIds(ctx: GradContext): { ids: string; perBatch: boolean } {
  const b = ctx.b;
  if (hasInput(ctx, POS_IDS)) {
    const p = ctx.I(POS_IDS);
    return { ids: b.op('Cast', [p], { to: DT.INT64 }), perBatch: ctx.shape(p)[0] !== 1 };
  }
  const s = ctx.shape(ctx.I(IDS))[1];
  if (typeof s === 'number') return { ids: b.constInt64(Array.from({ length: s }, (_, i) => i), [1, s]), perBatch: false };
  if (ctx.opset < 11) needsOpset(ctx, 11, `EmbedLayerNormalization node '${ctx.node.name}': position ids 0 … S−1 for a run-time sequence length (Range)`);
  const len = b.op('Reshape', [dimOf(ctx, ctx.I(IDS), 1), b.constInt64([], [0])]);
  const range = b.op('Range', [b.constInt64([0], []), len, b.constInt64([1], [])]);
  return { ids: unsqueeze(ctx, range, [0]), perBatch: false };
}

export const embedLayerNormalizationGrad: GradRule = {
  opType: 'EmbedLayerNormalization',
  domain: 'com.microsoft',
  differentiableInputs: [WORD, POS, SEG, GAMMA, BETA],
  grad(ctx) {
    const b = ctx.b;
    const dY = ctx.GO(0);
    const dSum = optionalGO(ctx, 2);
    if (!dY && !dSum) return [];
    const hasSegment = hasInput(ctx, SEG_IDS) && hasInput(ctx, SEG);
    const pos = positionIds(ctx);
    const needE = ctx.needsGrad(WORD) || ctx.needsGrad(POS) || (hasSegment && ctx.needsGrad(SEG));
    let sum = ctx.node.output[2];
    if (!sum) {
      const rows = (table: number, ids: string) => b.op('Gather', [ctx.I(table), ids], { axis: 0 });
      const we = b.op('Add', [rows(WORD, ctx.I(IDS)), rows(POS, pos.ids)]);
      sum = hasSegment ? b.op('Add', [we, rows(SEG, ctx.I(SEG_IDS))]) : we;
    }
    const r = trailingNormGrads(ctx, {
      x: sum,
      like: ctx.O(0),
      axis: ctx.rank(ctx.O(0)) - 1,
      eps: attrFloat(ctx.node, 'epsilon', DEFAULT_EPSILON),
      kind: 'standard',
      float32ForHalf: true,
      scale: ctx.I(GAMMA),
      bias: ctx.I(BETA),
      ...(dY ? { dY } : {}),
      need: { x: needE, scale: ctx.needsGrad(GAMMA), bias: ctx.needsGrad(BETA) },
    });
    const dE = r.dX && dSum ? b.op('Add', [r.dX, dSum]) : (r.dX ?? dSum);
    const out: Array<string | undefined> = [];
    if (dE) {
      if (ctx.needsGrad(WORD)) out[WORD] = gatherDataGrad(ctx, ctx.I(WORD), ctx.I(IDS), 2, dE, 0);
      if (ctx.needsGrad(POS)) {
        const dRows = pos.perBatch ? dE : reduce(ctx, 'ReduceSum', dE, [0], 1); // [1, S, H] for [1, S] ids
        out[POS] = gatherDataGrad(ctx, ctx.I(POS), pos.ids, 2, dRows, 0);
      }
      if (hasSegment && ctx.needsGrad(SEG)) out[SEG] = gatherDataGrad(ctx, ctx.I(SEG), ctx.I(SEG_IDS), 2, dE, 0);
    }
    out[GAMMA] = r.dScale;
    out[BETA] = r.dBias;
    return out;
  },
};
