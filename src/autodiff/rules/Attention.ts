/**
 * ONNX Attention (opset 23, and its opset-24 revision with nonpad_kv_seqlen and short masks):
 *   Y = softmax(softcap(scale · Q Kᵀ) + mask) V, with K, V = past ⧺ new along the sequence.
 * The probabilities are recomputed and differentiated by attention-common.ts (the math is
 * there); this rule maps the op's layouts and options onto it:
 *   - Q, K, V 4-D [B, N, S, H] or 3-D [B, S, N·H] (q_num_heads / kv_num_heads); kv heads fewer
 *     than query heads (GQA, MQA) are shared by consecutive query heads.
 *   - attn_mask: bool (false = hidden, −∞) or float (added; a trainable bias gets its gradient,
 *     summed over its broadcast axes); opset 24: a mask shorter than the keys is padded with −∞.
 *   - is_causal: query i sees key j ≤ i + offset, offset = past length, or nonpad_kv_seqlen − S
 *     per batch (opset 24, without past); nonpad_kv_seqlen hides keys at or after it.
 *   - scale (default 1/√H), softcap, softmax_precision (the softmax runs in that type).
 *   - Rows whose keys are all hidden give zero output, as ONNX Runtime's kernel does.
 *   - present_key / present_value gradients flow into the new K, V; qk_matmul_output gradients
 *     join at the point its mode names (0: scale·QKᵀ, 1: after softcap, 2: plus mask,
 *     3: probabilities).
 * past_key, past_value and nonpad_kv_seqlen get no gradient (caches and lengths). The opset-25
 * windows (left_window_size / right_window_size) are refused: ONNX Runtime 1.30 has no kernel
 * for them to verify the rule against.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrFloat, attrInt, findAttr } from '../../onnx/attributes.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { concatInts, scalarOf } from '../../onnx/ops.ts';
import { dimOf, hasInput, unsupported } from './shared/helpers.ts';
import { additiveMask, allKeys, attentionCoreGrads, attentionOutputGrads, dimScalar, mergeHeads, newKeysGrad, positionMask, splitHeads, staticDim, toInt64, type ScoreTerm } from './shared/attention.ts';

export const attentionGrad: GradRule = {
  opType: 'Attention',
  differentiableInputs: [0, 1, 2, 3],
  grad(ctx) {
    const { dY, dPresentK, dPresentV, dScores: dQK, any } = attentionOutputGrads(ctx, { presentK: 1, presentV: 2, scores: 3 });
    if (!any) return [];
    const need = { q: ctx.needsGrad(0), k: ctx.needsGrad(1), v: ctx.needsGrad(2), mask: hasInput(ctx, 3) && ctx.needsGrad(3) };
    if (!need.q && !need.k && !need.v && !need.mask) return [];
    for (const a of ['left_window_size', 'right_window_size']) {
      if (findAttr(ctx.node, a) && attrInt(ctx.node, a, -1) !== -1) unsupported(ctx, `${a} (opset-25 sliding window) has no gradient rule yet; ONNX Runtime 1.30 has no kernel to verify one against`);
    }
    const { b } = ctx;
    const [Q, K, V] = [ctx.I(0), ctx.I(1), ctx.I(2)];
    const dt = ctx.dtype(Q);
    const rank = ctx.rank(Q);
    if (rank !== 3 && rank !== 4) unsupported(ctx, `Q of rank ${rank}; Attention takes 3-D or 4-D Q, K, V`);
    let numHeads: number;
    let kvHeads: number;
    let headSize: number;
    let vHeadSize: number;
    if (rank === 4) {
      numHeads = staticDim(ctx, Q, 1, 'number of query heads');
      kvHeads = staticDim(ctx, K, 1, 'number of kv heads');
      headSize = staticDim(ctx, Q, 3, 'head size');
      vHeadSize = staticDim(ctx, V, 3, 'value head size');
    } else {
      numHeads = attrInt(ctx.node, 'q_num_heads', 0);
      kvHeads = attrInt(ctx.node, 'kv_num_heads', 0);
      if (numHeads <= 0 || kvHeads <= 0) unsupported(ctx, '3-D Q, K, V need q_num_heads and kv_num_heads');
      headSize = staticDim(ctx, Q, 2, 'query hidden size') / numHeads;
      vHeadSize = staticDim(ctx, V, 2, 'value hidden size') / kvHeads;
    }
    const q = rank === 4 ? Q : splitHeads(ctx, Q, numHeads, headSize);
    const kNew = rank === 4 ? K : splitHeads(ctx, K, kvHeads, headSize);
    const vNew = rank === 4 ? V : splitHeads(ctx, V, kvHeads, vHeadSize);
    const hasPast = hasInput(ctx, 4) && hasInput(ctx, 5);
    const k = allKeys(ctx, 1, hasPast ? 4 : undefined, kNew);
    const v = allKeys(ctx, 2, hasPast ? 5 : undefined, vNew);

    // Additive terms: the mask (bool → 0/−∞; float as given, padded with −∞ when short) and the
    // position mask (causal, nonpad_kv_seqlen).
    const S = dimScalar(ctx, Q, rank === 4 ? 2 : 1);
    const L = dimScalar(ctx, K, rank === 4 ? 2 : 1);
    const T = hasPast ? b.op('Add', [dimScalar(ctx, ctx.I(4), 2), L]) : L;
    const terms: ScoreTerm[] = [];
    let maskTerm: { name: string; padded: boolean } | undefined;
    if (hasInput(ctx, 3)) {
      const mask = ctx.I(3);
      const mRank = ctx.rank(mask);
      if (mRank > 4) unsupported(ctx, `attn_mask of rank ${mRank}; it must broadcast to [B, N, S, T]`);
      let m = ctx.dtype(mask) === DT.BOOL ? additiveMask(ctx, mask, -Infinity, dt) : mask;
      if (mRank < 4) m = b.op('Reshape', [m, concatInts(ctx, [...new Array<number>(4 - mRank).fill(1), ...Array.from({ length: mRank }, (_, i) => dimOf(ctx, mask, i))])]);
      const maskLen = ctx.shape(mask)[mRank - 1];
      const padded = ctx.opset >= 24 && !(typeof maskLen === 'number' && maskLen === staticKeyLength(ctx, hasPast));
      if (padded) {
        // Opset 24: a shorter last dim is padded to T with −∞ (a no-op when it is already T).
        const missing = b.op('Sub', [b.op('Reshape', [T, b.constInt64([1])]), dimOf(ctx, mask, mRank - 1)]);
        m = b.op('Pad', [m, concatInts(ctx, [0, 0, 0, 0, 0, 0, 0, missing]), scalarOf(ctx, -Infinity, dt)], { mode: 'constant' });
      }
      const heads = ctx.shape(mask)[mRank - 3];
      terms.push({ name: m, heads: mRank >= 3 && heads !== 1 ? numHeads : 1 });
      maskTerm = { name: mask, padded };
    }
    const causal = attrInt(ctx.node, 'is_causal', 0) === 1;
    const nonpad = ctx.opset >= 24 && hasInput(ctx, 6) ? toInt64(ctx, ctx.I(6)) : undefined;
    let offset: string | undefined;
    if (causal) offset = hasPast ? dimScalar(ctx, ctx.I(4), 2) : nonpad ? b.op('Sub', [nonpad, S]) : undefined;
    const allowed = positionMask(ctx, { S, T, causal, ...(offset ? { offset } : {}), ...(nonpad ? { validKeys: nonpad } : {}) });
    if (allowed) terms.push({ name: additiveMask(ctx, allowed, -Infinity, dt), heads: 1 });

    const mode = attrInt(ctx.node, 'qk_matmul_output_mode', 0);
    if (mode < 0 || mode > 3) unsupported(ctx, `qk_matmul_output_mode ${mode}; expected 0 to 3`);
    const softmaxPrecision = attrInt(ctx.node, 'softmax_precision');
    const grads = attentionCoreGrads(ctx, {
      q,
      k,
      v,
      dtype: dt,
      numHeads,
      kvHeads,
      headSize,
      vHeadSize,
      scale: attrFloat(ctx.node, 'scale', 1 / Math.sqrt(headSize)),
      softcap: attrFloat(ctx.node, 'softcap', 0),
      terms,
      zeroMaskedRows: true,
      ...(softmaxPrecision ? { softmaxType: softmaxPrecision } : {}),
      ...(dY ? { dY: rank === 4 ? dY : splitHeads(ctx, dY, numHeads, vHeadSize) } : {}),
      ...(dQK ? { [(['dS0', 'dS1', 'dS2', 'dP'] as const)[mode]!]: dQK } : {}),
      need: { q: need.q, k: need.k, v: need.v, scores: need.mask },
    });
    const past = hasPast ? dimScalar(ctx, ctx.I(4), 2) : undefined;
    let dMask: string | undefined;
    if (need.mask && grads.dScores && maskTerm) {
      let g = grads.dScores;
      const mRank = ctx.rank(maskTerm.name);
      if (maskTerm.padded) g = b.op('Slice', [g, b.constInt64([0]), dimOf(ctx, maskTerm.name, mRank - 1), b.constInt64([3])]);
      dMask = ctx.unbroadcast(g, maskTerm.name, scoreShape(ctx, rank, numHeads, maskTerm.padded ? ctx.shape(maskTerm.name)[mRank - 1]! : staticKeyLength(ctx, hasPast)));
    }
    return [
      need.q && grads.dq ? (rank === 4 ? grads.dq : mergeHeads(ctx, grads.dq)) : undefined,
      need.k ? newKeysGrad(ctx, grads.dk, dPresentK, past, rank === 3) : undefined,
      need.v ? newKeysGrad(ctx, grads.dv, dPresentV, past, rank === 3) : undefined,
      dMask,
    ];
  },
};

/** T = past + kv length where both are static, else null. */
function staticKeyLength(ctx: GradContext, hasPast: boolean): number | null {
  const rank = ctx.rank(ctx.I(0));
  const L = ctx.shape(ctx.I(1))[rank === 4 ? 2 : 1];
  const P = hasPast ? ctx.shape(ctx.I(4))[2] : 0;
  return typeof L === 'number' && typeof P === 'number' ? L + P : null;
}

/** Static shape of the scores [B, N, S, T] (null where dynamic). */
function scoreShape(ctx: GradContext, rank: number, numHeads: number, T: number | null): Array<number | null> {
  const qs = ctx.shape(ctx.I(0));
  return [qs[0]!, numHeads, qs[rank === 4 ? 2 : 1]!, T];
}
