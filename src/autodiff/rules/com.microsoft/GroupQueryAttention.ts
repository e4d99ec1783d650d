/**
 * com.microsoft GroupQueryAttention (the onnxruntime-genai model builder's decoder attention):
 * Nk kv heads shared by N = g·Nk query heads, a BNSH KV cache, and the positions of each batch
 * row given by seqlens_k: row b holds total_b = seqlens_k[b] + 1 tokens, of which the last S are
 * new, so its queries sit at positions past_b + i with past_b = max(total_b − S, 0) (0 in a first,
 * right-padded prompt). Query i of row b sees key j iff j < total_b, j ≤ past_b + i (causal) and
 * j ≥ past_b + i − local_window_size (local window) — hidden keys get probability 0.
 * The attention backward is attention-common.ts; this rule adds:
 *   - packed QKV (key and value absent: query = Q | K | V on its last axis);
 *   - do_rotary: Q and the new K are rotated at their positions (position_ids, else past_b + i)
 *     by cos/sin_cache (rotary_interleaved); their gradients are rotated back (dX = Rᵀ dY);
 *   - the keys attended are present_key / present_value (the cache with the new tokens written
 *     at past_b …); the new tokens' gradients are gathered back from there, together with the
 *     present outputs' own gradients;
 *   - softcap, scale, attention_bias (padded to the cache length, and its gradient),
 *     smooth_softmax and head_sink (a per-head logit in the softmax normaliser; it gets its
 *     gradient), output_qk (qk_output 1: scores before the softmax, 2: probabilities), causal=0.
 * past_key/past_value, seqlens_k, total_sequence_length, cos/sin_cache and position_ids get no
 * gradient. Refused: quantized KV caches (k_scale / v_scale, k_quant_type), q/k_norm_weight
 * (ONNX Runtime's CPU kernel rejects them), sliding_window_cache=1 (its eviction is a decoding
 * buffer layout), and past_key without the present outputs (the cache the keys come from).
 */
import type { GradContext, GradRule } from '../../rule.ts';
import { attrFloat, attrInt, attrString } from '../../../onnx/attributes.ts';
import { concatInts, scalarOf, squeeze, unsqueeze } from '../../../onnx/ops.ts';
import { dimOf, hasInput, split, unsupported } from '../shared/helpers.ts';
import {
  additiveMask,
  attentionCoreGrads,
  attentionOutputGrads,
  dimScalar,
  gatherRotaryTables,
  hasOutput,
  int64Scalar,
  mergeHeads,
  positionMask,
  rotate,
  splitHeads,
  staticDim,
  toInt64,
  unsqueezeTables,
  type RotarySpec,
  type RotaryTables,
  type ScoreTerm,
  requireAttentionOpset,
} from '../shared/attention.ts';

export const msGroupQueryAttentionGrad: GradRule = {
  opType: 'GroupQueryAttention',
  domain: 'com.microsoft',
  differentiableInputs: [0, 1, 2, 10, 11],
  grad(ctx) {
    requireAttentionOpset(ctx);
    const { dY, dPresentK, dPresentV, dScores: dQK, any } = attentionOutputGrads(ctx, { presentK: 1, presentV: 2, scores: 3 });
    if (!any) return [];
    const packed = !hasInput(ctx, 1);
    const need = {
      q: ctx.needsGrad(0),
      k: !packed && ctx.needsGrad(1),
      v: !packed && hasInput(ctx, 2) && ctx.needsGrad(2),
      bias: hasInput(ctx, 10) && ctx.needsGrad(10),
      sink: hasInput(ctx, 11) && ctx.needsGrad(11),
    };
    if (!need.q && !need.k && !need.v && !need.bias && !need.sink) return [];
    refuseDecodingForms(ctx);
    const { b } = ctx;
    const query = ctx.I(0);
    const dt = ctx.dtype(query);
    const numHeads = attrInt(ctx.node, 'num_heads', 0);
    const kvHeads = attrInt(ctx.node, 'kv_num_heads', 0);
    const width = staticDim(ctx, query, 2, 'query hidden size');
    const headSize = width / (packed ? numHeads + 2 * kvHeads : numHeads);
    const qkvWidths = [numHeads * headSize, kvHeads * headSize, kvHeads * headSize];
    const [qIn, kIn, vIn] = packed ? (split(ctx, query, 2, qkvWidths) as [string, string, string]) : [query, ctx.I(1), ctx.I(2)];
    const hasPast = hasInput(ctx, 3) && hasInput(ctx, 4);
    if (hasPast && !(hasOutput(ctx, 1) && hasOutput(ctx, 2))) unsupported(ctx, 'past_key/past_value without the present_key/present_value outputs; export the node with its present outputs');

    // Positions: total_b tokens in row b, the last S of them new.
    const S = dimScalar(ctx, query, 1);
    const total = b.op('Add', [toInt64(ctx, ctx.I(5)), int64Scalar(ctx, 1)]);
    const back = b.op('Sub', [total, S]);
    const past = b.op('Where', [b.op('Less', [back, int64Scalar(ctx, 0)]), int64Scalar(ctx, 0), back]);

    let q = splitHeads(ctx, qIn, numHeads, headSize);
    let kNew = splitHeads(ctx, kIn, kvHeads, headSize);
    const vNew = splitHeads(ctx, vIn, kvHeads, headSize);
    let rot: { tables: RotaryTables; spec: RotarySpec } | undefined;
    if (attrInt(ctx.node, 'do_rotary', 0) === 1) {
      const cosCache = ctx.I(7);
      const positions = hasInput(ctx, 9) ? toInt64(ctx, ctx.I(9)) : tokenPositions(ctx, past, S);
      const tables = unsqueezeTables(ctx, gatherRotaryTables(ctx, cosCache, ctx.I(8), positions, 2), [1]);
      const spec = { interleaved: attrInt(ctx.node, 'rotary_interleaved', 0) === 1, rotaryDim: 2 * staticDim(ctx, cosCache, 1, 'rotary table width'), headSize };
      rot = { tables, spec };
      q = rotate(ctx, q, tables, spec, 4, false);
      kNew = rotate(ctx, kNew, tables, spec, 4, false);
    }
    // The keys attended are the present outputs (the cache with the new tokens written).
    const k = hasOutput(ctx, 1) ? ctx.O(1) : kNew;
    const v = hasOutput(ctx, 2) ? ctx.O(2) : vNew;
    const cacheOut = hasOutput(ctx, 1) ? ctx.O(1) : undefined;
    // Its length from its run-time shape: ONNX Runtime's shape inference gives present_key the
    // past length (right only for a shared buffer), which a probed constant would contradict.
    const T = cacheOut ? squeeze(ctx, b.op('Gather', [b.op('Shape', [cacheOut]), b.constInt64([2])], { axis: 0 }), [0]) : S;

    const terms: ScoreTerm[] = [];
    const causal = attrInt(ctx.node, 'causal', 1) === 1;
    const window = attrInt(ctx.node, 'local_window_size', -1);
    const allowed = positionMask(ctx, { S, T, offset: past, causal, validKeys: total, ...(window > 0 ? { leftWindow: window - 1 } : {}) })!;
    terms.push({ name: additiveMask(ctx, allowed, -Infinity, dt), heads: 1 });
    let biasPadded = false;
    if (hasInput(ctx, 10)) {
      // attention_bias covers total_sequence_length keys; the cache may be longer.
      const ab = ctx.I(10);
      const cacheLen = cacheOut ? ctx.shape(cacheOut)[2] : ctx.shape(query)[1];
      biasPadded = !(typeof cacheLen === 'number' && cacheLen === ctx.shape(ab)[3]);
      const missing = b.op('Sub', [b.op('Reshape', [T, b.constInt64([1])]), dimOf(ctx, ab, 3)]);
      const padded = biasPadded ? b.op('Pad', [ab, concatInts(ctx, [0, 0, 0, 0, 0, 0, 0, missing]), scalarOf(ctx, 0, dt)], { mode: 'constant' }) : ab;
      terms.push({ name: padded, heads: ctx.shape(ab)[1] === 1 ? 1 : numHeads });
    }
    const qkMode = attrInt(ctx.node, 'qk_output', 0);
    const sink = hasInput(ctx, 11) ? ctx.I(11) : attrInt(ctx.node, 'smooth_softmax', 0) === 1 ? 'zero' : undefined;
    const grads = attentionCoreGrads(ctx, {
      q,
      k,
      v,
      dtype: dt,
      numHeads,
      kvHeads,
      headSize,
      vHeadSize: headSize,
      scale: attrFloat(ctx.node, 'scale', 0) || 1 / Math.sqrt(headSize),
      softcap: attrFloat(ctx.node, 'softcap', 0),
      terms,
      ...(sink ? { sink, seqLen: dimOf(ctx, query, 1) } : {}),
      ...(dY ? { dY: splitHeads(ctx, dY, numHeads, headSize) } : {}),
      // output_qk 1 holds the scores fed to the softmax at visible keys and constants elsewhere.
      ...(dQK && qkMode === 1 ? { dS2: b.op('Where', [allowed, dQK, scalarOf(ctx, 0, dt)]) } : dQK && qkMode === 2 ? { dP: dQK } : {}),
      need: { q: need.q, k: need.k || packed, v: need.v || packed, scores: need.bias, sink: need.sink },
    });
    // New tokens' K, V gradients: read back from their cache rows past_b + s.
    const fresh = (full: string | undefined, dPresent: string | undefined) => {
      const g = full && dPresent ? b.op('Add', [full, dPresent]) : (full ?? dPresent);
      if (!g) return undefined;
      const rows = b.op('Reshape', [tokenPositions(ctx, past, S), b.constInt64([0, 1, -1, 1])]);
      const index = b.op('Expand', [rows, concatInts(ctx, [dimOf(ctx, query, 0), kvHeads, dimOf(ctx, query, 1), headSize])]);
      return b.op('GatherElements', [g, index], { axis: 2 });
    };
    let dq = grads.dq;
    let dk = fresh(grads.dk, dPresentK);
    const dv = fresh(grads.dv, dPresentV);
    if (rot) {
      if (dq) dq = rotate(ctx, dq, rot.tables, rot.spec, 4, true);
      if (dk) dk = rotate(ctx, dk, rot.tables, rot.spec, 4, true);
    }
    const merged = [dq, dk, dv].map((g) => (g ? mergeHeads(ctx, g) : undefined));
    let dQuery = merged[0];
    if (packed && need.q) {
      const zeros = (i: number) => b.op('Mul', [[qIn, kIn, vIn][i]!, scalarOf(ctx, 0, dt)]);
      dQuery = b.op('Concat', merged.map((g, i) => g ?? zeros(i)), { axis: 2 });
    }
    let dBias: string | undefined;
    if (need.bias && grads.dScores) {
      const ab = ctx.I(10);
      const g = biasPadded ? b.op('Slice', [grads.dScores, b.constInt64([0]), dimOf(ctx, ab, 3), b.constInt64([3])]) : grads.dScores;
      const qs = ctx.shape(query);
      dBias = ctx.unbroadcast(g, ab, [qs[0]!, numHeads, qs[1]!, ctx.shape(ab)[3]!]);
    }
    const out: Array<string | undefined> = [need.q ? dQuery : undefined, need.k ? merged[1] : undefined, need.v ? merged[2] : undefined];
    out[10] = dBias;
    out[11] = need.sink ? grads.dSink : undefined;
    return out;
  },
};

/** Positions of the new tokens, [B, S]: past_b + s. */
function tokenPositions(ctx: GradContext, past: string, S: string): string {
  const { b } = ctx;
  return b.op('Add', [b.op('Reshape', [past, b.constInt64([-1, 1])]), unsqueeze(ctx, b.op('Range', [int64Scalar(ctx, 0), S, int64Scalar(ctx, 1)]), [0])]);
}

/** Decoding-only and quantized forms with no gradient rule. */
function refuseDecodingForms(ctx: GradContext): void {
  if (hasInput(ctx, 12) || hasInput(ctx, 13)) unsupported(ctx, 'a quantized KV cache (k_scale / v_scale) has no gradient rule; export with a float cache');
  for (const a of ['k_quant_type', 'v_quant_type']) {
    const t = attrString(ctx.node, a, 'NONE');
    if (t !== 'NONE') unsupported(ctx, `${a} '${t}' (a quantized KV cache) has no gradient rule; export with a float cache`);
  }
  if (hasInput(ctx, 14) || hasInput(ctx, 15)) unsupported(ctx, "q_norm_weight / k_norm_weight are rejected by ONNX Runtime's CPU kernel, so their gradient rule could not be verified; export the Q/K RMS norms unfused");
  if (attrInt(ctx.node, 'sliding_window_cache', 0) !== 0) unsupported(ctx, 'sliding_window_cache=1 (a window-sized, self-evicting decoding cache) has no gradient rule; export with a full-length cache');
}
