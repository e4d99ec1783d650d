/**
 * com.microsoft MultiHeadAttention (self or cross attention on projected Q, K, V):
 *   Y = merge_heads(softmax(scale · Q Kᵀ + masks + attention_bias) V)
 *   Q, K, V = query, key, value (+ the matching slice of `bias`), heads split; K, V = past ⧺ new.
 * The attention backward is attention-common.ts. Forms:
 *   - query [B, S, D]; key/value [B, L, D] (projected), or [B, N, L, H] (already in heads, as a
 *     cross-attention cache: no bias is added to them);
 *   - bias [Dq + Dk + Dv]: dbias = Σ_tokens of dQ | dK | dV;
 *   - key_padding_mask as contribMaskTerm reads it; unidirectional hides key j > past + i with
 *     −10000 in every query row but the last, as ONNX Runtime's CPU kernel does (the same as the
 *     usual causal mask whenever the keys end with the queries, as in self-attention; measured
 *     for cross attention); attention_bias gets its gradient;
 *   - past_key / past_value [B, N, P, H]; present_key / present_value and qk gradients join the
 *     backward (qk: the scores fed to the softmax; ONNX Runtime writes the lowest float at hidden
 *     keys there, constants that pass no gradient).
 * Refused: packed QKV / KV (5-D query or key: ONNX Runtime's CPU kernel does not run them, so no
 * rule could be verified), past_sequence_length (buffer sharing) and cache_indirection (beam
 * search) — decoding-only inputs with nothing to train.
 */
import type { GradRule } from '../../rule.ts';
import { attrFloat, attrInt } from '../../../onnx/attributes.ts';
import { reduce, scalarOf } from '../../../onnx/ops.ts';
import { hasInput, split, unsupported } from '../shared/helpers.ts';
import { makeTensor } from '../../../onnx/tensor.ts';
import { dtypeSize } from '../../../onnx/dtype.ts';
import { additiveMask, allKeys, attentionCoreGrads, attentionOutputGrads, CAUSAL_FILL, contribMaskTerm, dimScalar, mergeHeads, newKeysGrad, positionMask, splitHeads, staticDim, requireAttentionOpset, type ScoreTerm } from '../shared/attention.ts';

export const msMultiHeadAttentionGrad: GradRule = {
  opType: 'MultiHeadAttention',
  domain: 'com.microsoft',
  differentiableInputs: [0, 1, 2, 3, 5],
  grad(ctx) {
    requireAttentionOpset(ctx);
    const { dY, dPresentK, dPresentV, dScores: dQK, any } = attentionOutputGrads(ctx, { presentK: 1, presentV: 2, scores: 3 });
    if (!any) return [];
    const need = { q: ctx.needsGrad(0), k: ctx.needsGrad(1), v: ctx.needsGrad(2), bias: hasInput(ctx, 3) && ctx.needsGrad(3), attnBias: hasInput(ctx, 5) && ctx.needsGrad(5) };
    if (!need.q && !need.k && !need.v && !need.bias && !need.attnBias) return [];
    const { b } = ctx;
    const query = ctx.I(0);
    if (hasInput(ctx, 1) && ctx.rank(ctx.I(1)) === 5) unsupported(ctx, "packed KV (a 5-D key) is not run by ONNX Runtime's CPU kernel, so its gradient rule could not be verified; export separate key and value");
    if (ctx.rank(query) !== 3 || !hasInput(ctx, 1) || !hasInput(ctx, 2)) {
      unsupported(ctx, "packed QKV (a 5-D query without key and value) is not run by ONNX Runtime's CPU kernel, so its gradient rule could not be verified; export separate query, key and value");
    }
    const key = ctx.I(1);
    const value = ctx.I(2);
    if (hasInput(ctx, 8) || hasInput(ctx, 9)) unsupported(ctx, 'past_sequence_length / cache_indirection (shared-buffer decoding, beam search) have no gradient rule: they only occur in decoding graphs');
    const dt = ctx.dtype(query);
    const numHeads = attrInt(ctx.node, 'num_heads', 0);
    const dq = staticDim(ctx, query, 2, 'query hidden size');
    const headSize = dq / numHeads;
    const kvInHeads = ctx.rank(key) === 4;
    const dk = kvInHeads ? headSize * numHeads : staticDim(ctx, key, 2, 'key hidden size');
    const dvW = kvInHeads ? staticDim(ctx, value, 3, 'value head size') * numHeads : staticDim(ctx, value, 2, 'value hidden size');
    const vHeadSize = dvW / numHeads;
    // Bias slices (not added to keys and values already in heads).
    const hasBias = hasInput(ctx, 3);
    const [bq, bk, bv] = hasBias ? (split(ctx, ctx.I(3), 0, [dq, dk, dvW]) as [string, string, string]) : [];
    const withBias = (x: string, bias: string | undefined) => (bias ? b.op('Add', [x, bias]) : x);
    const q = splitHeads(ctx, withBias(query, bq), numHeads, headSize);
    const kNew = kvInHeads ? key : splitHeads(ctx, withBias(key, bk), numHeads, headSize);
    const vNew = kvInHeads ? value : splitHeads(ctx, withBias(value, bv), numHeads, vHeadSize);
    const hasPast = hasInput(ctx, 6) && hasInput(ctx, 7);
    const k = allKeys(ctx, 1, hasPast ? 6 : undefined, kNew);
    const v = allKeys(ctx, 2, hasPast ? 7 : undefined, vNew);

    const S = dimScalar(ctx, query, 1);
    const L = dimScalar(ctx, key, kvInHeads ? 2 : 1);
    const P = hasPast ? dimScalar(ctx, ctx.I(6), 2) : undefined;
    const T = P ? b.op('Add', [P, L]) : L;
    const terms: ScoreTerm[] = [];
    if (hasInput(ctx, 4)) terms.push(contribMaskTerm(ctx, ctx.I(4), { batch: dimScalar(ctx, query, 0), batchDim: ctx.shape(query)[0]!, S, T }, attrFloat(ctx.node, 'mask_filter_value', -10000), dt));
    if (attrInt(ctx.node, 'unidirectional', 0) === 1) {
      const allowed = positionMask(ctx, { S, T, causal: true, openLastRow: true, ...(P ? { offset: P } : {}) })!;
      terms.push({ name: additiveMask(ctx, allowed, CAUSAL_FILL, dt), heads: 1 });
    }
    // The qk output holds the lowest float at hidden keys (a constant): no gradient flows there.
    let dScores = dQK;
    if (dQK && terms.length > 0) {
      const hidden = terms.map((t) => t.name).reduce((acc, t) => b.op('Add', [acc, t]));
      dScores = b.op('Where', [b.op('Equal', [hidden, scalarOf(ctx, 0, dt)]), dQK, scalarOf(ctx, 0, dt)]);
    }
    if (hasInput(ctx, 5)) terms.push({ name: ctx.I(5), heads: ctx.shape(ctx.I(5))[1] === 1 ? 1 : numHeads });

    const grads = attentionCoreGrads(ctx, {
      q,
      k,
      v,
      dtype: dt,
      numHeads,
      kvHeads: numHeads,
      headSize,
      vHeadSize,
      scale: attrFloat(ctx.node, 'scale', 0) || 1 / Math.sqrt(headSize),
      terms,
      ...(dY ? { dY: splitHeads(ctx, dY, numHeads, vHeadSize) } : {}),
      ...(dScores ? { dS2: dScores } : {}),
      need: { q: need.q || need.bias, k: need.k || need.bias, v: need.v || need.bias, scores: need.attnBias },
    });
    const qs = ctx.shape(query);
    const dAttnBias = need.attnBias && grads.dScores ? ctx.unbroadcast(grads.dScores, ctx.I(5), [qs[0]!, numHeads, qs[1]!, null]) : undefined;
    const dQuery = grads.dq ? mergeHeads(ctx, grads.dq) : undefined;
    const dKey = newKeysGrad(ctx, grads.dk, dPresentK, P, !kvInHeads);
    const dValue = newKeysGrad(ctx, grads.dv, dPresentV, P, !kvInHeads);
    let dBias: string | undefined;
    if (need.bias) {
      const zeros = (width: number) => b.op('ConstantOfShape', [b.constInt64([width])], { value: zeroOf(dt) });
      const sum = (g: string | undefined, width: number, projected: boolean) => (g && projected ? reduce(ctx, 'ReduceSum', g, [0, 1], 0) : zeros(width));
      dBias = b.op('Concat', [sum(dQuery, dq, true), sum(dKey, dk, !kvInHeads), sum(dValue, dvW, !kvInHeads)], { axis: 0 });
    }
    return [need.q ? dQuery : undefined, need.k ? dKey : undefined, need.v ? dValue : undefined, dBias, undefined, dAttnBias];
  },
};

function zeroOf(dt: number) {
  return makeTensor('value', dt, [1], new Uint8Array(dtypeSize(dt)));
}
