/**
 * com.microsoft Attention (ONNX Runtime's fused self-attention of BERT/GPT-2 exports):
 *   Q | K | V = X W + bias          (W [D_in, Dq + Dk + Dv], split per qkv_hidden_sizes)
 *   Y = merge_heads(softmax(scale · Q Kᵀ + masks + attention_bias) V),  K, V = past ⧺ new
 * The attention backward is attention-common.ts; here the projection is recomputed and
 * differentiated like a linear layer (MatMul rule helpers): with dQKV = dQ | dK | dV merged,
 *   dX = dQKV Wᵀ,  dW = Xᵀ dQKV (one GEMM over all tokens),  dbias = Σ_tokens dQKV.
 * Masks (mask_index; see contribMaskTerm) add mask_filter_value to hidden keys, unidirectional
 * (key j > past + i hidden; skipped for a single query) adds −10000 whatever mask_filter_value
 * is (ONNX Runtime's CPU kernel does so, as the finite-difference tests with a small
 * mask_filter_value show);
 * attention_bias is added and gets its gradient. The present output's gradient flows into the
 * new K, V. past, mask_index and past_sequence_length get none.
 * Refused: do_rotary=1 and past_present_share_buffer=1 (ONNX Runtime's CPU kernel rejects both,
 * so no rule could be verified; export attention unfused or as MultiHeadAttention +
 * RotaryEmbedding).
 */
import type { GradRule } from '../../rule.ts';
import { attrFloat, attrInt, attrInts } from '../../../onnx/attributes.ts';
import { reduce, scalarOf } from '../../../onnx/ops.ts';
import { hasInput, split, unsupported } from '../shared/helpers.ts';
import { matMulGrads } from '../MatMul.ts';
import { additiveMask, attentionCoreGrads, CAUSAL_FILL, contribMaskTerm, dimScalar, hasOutput, mergeHeads, newKeysGrad, positionMask, splitHeads, staticDim, requireAttentionOpset, type ScoreTerm } from '../shared/attention.ts';

export const msAttentionGrad: GradRule = {
  opType: 'Attention',
  domain: 'com.microsoft',
  differentiableInputs: [0, 1, 2, 5],
  grad(ctx) {
    requireAttentionOpset(ctx);
    const dY = ctx.GO(0);
    const dPresent = hasOutput(ctx, 1) ? ctx.GO(1) : undefined;
    if (!dY && !dPresent) return [];
    const hasBias = hasInput(ctx, 2);
    const hasAttnBias = hasInput(ctx, 5);
    const need = { x: ctx.needsGrad(0), w: ctx.needsGrad(1), bias: hasBias && ctx.needsGrad(2), attnBias: hasAttnBias && ctx.needsGrad(5) };
    if (!need.x && !need.w && !need.bias && !need.attnBias) return [];
    if (attrInt(ctx.node, 'do_rotary', 0) !== 0) unsupported(ctx, "do_rotary=1 is not run by ONNX Runtime's CPU kernel, so its gradient rule could not be verified; fuse as MultiHeadAttention + RotaryEmbedding instead");
    if (attrInt(ctx.node, 'past_present_share_buffer', 0) !== 0) unsupported(ctx, "past_present_share_buffer=1 is not run by ONNX Runtime's CPU kernel, so its gradient rule could not be verified; training needs no shared KV buffer");
    const { b } = ctx;
    const X = ctx.I(0);
    const W = ctx.I(1);
    const dt = ctx.dtype(X);
    if (ctx.rank(X) !== 3) unsupported(ctx, `input of rank ${ctx.rank(X)}; expected [B, S, D_in]`);
    const numHeads = attrInt(ctx.node, 'num_heads', 0);
    const total = staticDim(ctx, W, 1, 'projection width');
    const sizes = attrInts(ctx.node, 'qkv_hidden_sizes') ?? [total / 3, total / 3, total / 3];
    const [dq, dk, dv] = sizes as [number, number, number];
    if (sizes.length !== 3 || dq + dk + dv !== total || dq !== dk || dq % numHeads !== 0 || dv % numHeads !== 0) {
      unsupported(ctx, `qkv_hidden_sizes [${sizes.join(', ')}] do not split the ${total}-wide weights into Q = K and V widths divisible by num_heads ${numHeads}`);
    }
    const headSize = dq / numHeads;
    const vHeadSize = dv / numHeads;
    // Recompute the projection and split the heads.
    const xw = b.op('MatMul', [X, W]);
    const qkv = hasBias ? b.op('Add', [xw, ctx.I(2)]) : xw;
    const [qm, km, vm] = split(ctx, qkv, 2, sizes) as [string, string, string];
    const q = splitHeads(ctx, qm, numHeads, headSize);
    const hasPast = hasInput(ctx, 4);
    const cache = (i: 0 | 1, nw: string) => {
      if (hasOutput(ctx, 1)) return b.op('Gather', [ctx.O(1), b.constInt64([i], [])], { axis: 0 });
      return hasPast ? b.op('Concat', [b.op('Gather', [ctx.I(4), b.constInt64([i], [])], { axis: 0 }), nw], { axis: 2 }) : nw;
    };
    const k = cache(0, splitHeads(ctx, km, numHeads, headSize));
    const v = cache(1, splitHeads(ctx, vm, numHeads, vHeadSize));

    const S = dimScalar(ctx, X, 1);
    const P = hasPast ? dimScalar(ctx, ctx.I(4), 3) : undefined;
    const T = P ? b.op('Add', [P, S]) : S;
    const fill = attrFloat(ctx.node, 'mask_filter_value', -10000);
    const terms: ScoreTerm[] = [];
    if (hasInput(ctx, 3)) terms.push(contribMaskTerm(ctx, ctx.I(3), { batch: dimScalar(ctx, X, 0), batchDim: ctx.shape(X)[0]!, S, T }, fill, dt));
    if (attrInt(ctx.node, 'unidirectional', 0) === 1 && ctx.shape(X)[1] !== 1) {
      terms.push({ name: additiveMask(ctx, positionMask(ctx, { S, T, causal: true, ...(P ? { offset: P } : {}) })!, CAUSAL_FILL, dt), heads: 1 });
    }
    if (hasAttnBias) terms.push({ name: ctx.I(5), heads: ctx.shape(ctx.I(5))[1] === 1 ? 1 : numHeads });

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
      need: { q: true, k: true, v: true, scores: need.attnBias },
    });
    const dAttnBias = need.attnBias && grads.dScores ? ctx.unbroadcast(grads.dScores, ctx.I(5), [ctx.shape(X)[0]!, numHeads, ctx.shape(X)[1]!, null]) : undefined;
    if (!need.x && !need.w && !need.bias) return [undefined, undefined, undefined, undefined, undefined, dAttnBias];
    // Gradients of the new keys and values (all keys, plus the present output's, minus the past).
    const presentPart = (i: 0 | 1) => (dPresent ? b.op('Gather', [dPresent, b.constInt64([i], [])], { axis: 0 }) : undefined);
    const zerosQ = () => b.op('Mul', [qm, scalarOf(ctx, 0, dt)]);
    const dQKV = b.op('Concat', [grads.dq ? mergeHeads(ctx, grads.dq) : zerosQ(), newKeysGrad(ctx, grads.dk, presentPart(0), P, true)!, newKeysGrad(ctx, grads.dv, presentPart(1), P, true)!], { axis: 2 });
    const xs = ctx.shape(X);
    const [dX, dW] = matMulGrads(ctx, { a: X, aShape: xs, b: W, bShape: ctx.shape(W), dY: dQKV, yShape: [xs[0]!, xs[1]!, total], needA: need.x, needB: need.w });
    return [dX, dW, need.bias ? reduce(ctx, 'ReduceSum', dQKV, [0, 1], 0) : undefined, undefined, undefined, dAttnBias];
  },
};
