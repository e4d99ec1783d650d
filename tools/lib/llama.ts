/**
 * A LlamaForCausalLM-like decoder in the layout of a TorchScript / optimum export (no KV cache):
 * `/model/embed_tokens/Gather`, `/model/layers.N/self_attn/{q,k,v,o}_proj/MatMul` (no bias),
 * RMSNorm as Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul/Mul, rotary embeddings (Cos/Sin, Slice
 * halves, Neg, Concat, Mul/Add), a causal + padding mask (Trilu or Range/LessOrEqual, And,
 * Where), SwiGLU MLP with SiLU as Sigmoid·Mul, `/lm_head/MatMul` → `logits [B, S, vocab]`.
 * With `cache: 'static'`, the opset-24 standard-op form of a fixed-size KV cache instead of the
 * mask (TensorScatter writes, ONNX Attention with nonpad_kv_seqlen; see LlamaConfig.cache).
 */
import { DataType as DT } from '../../src/onnx/dtype.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import {
  ExportContext,
  FLOAT32_MIN,
  constI64,
  dim,
  reshape,
  scalarF32,
  shapeOf,
  transposed,
  unsqueeze,
  type CommonConfig,
  type Opset,
} from './export-context.ts';
import { linear, mergeHeads, rangePositionIds, rmsNorm, silu, splitHeads } from './blocks.ts';

export interface LlamaConfig extends CommonConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** num_key_value_heads (default numHeads; fewer gives grouped-query attention). */
  numKeyValueHeads?: number;
  intermediateSize: number;
  /** max_position_embeddings (size of the rotary tables). */
  maxPositions: number;
  /** Default 1e-6. */
  rmsNormEps?: number;
  /** Default 10000. */
  ropeTheta?: number;
  /** Cos/Sin as Gathers from cached tables (initializers, default) or computed from inv_freq. */
  rotary?: 'table' | 'computed';
  /** 1/√(var+eps) as Reciprocal (default) or Div. */
  rmsInverse?: 'reciprocal' | 'div';
  /** Causal part of the mask: Trilu over ones (default) or Range/LessOrEqual. */
  causalMask?: 'trilu' | 'range';
  /** lm_head holds the transposed embedding values (default false). */
  tieWordEmbeddings?: boolean;
  /**
   * `static`: a fixed-size KV cache, as an opset-24 export with the standard ops has it. Per
   * layer `past_key_values.N.key` / `.value` [B, kv heads, cacheLength, head size] are written by
   * TensorScatter at `write_indices` [B] (→ `present.N.key` / `.value`), and ONNX Attention
   * (is_causal) reads the whole cache with `nonpad_kv_seqlen` [B]; positions come from a
   * `position_ids` input, and there is no attention mask. Needs opset 24. Default `none`.
   */
  cache?: 'none' | 'static';
  /** Length of the static cache (default: maxPositions). */
  cacheLength?: number;
}

type ResolvedLlamaConfig = Required<Omit<LlamaConfig, keyof CommonConfig>> & { opset: Opset };

function resolve(cfg: LlamaConfig): ResolvedLlamaConfig {
  const numKeyValueHeads = cfg.numKeyValueHeads ?? cfg.numHeads;
  if (cfg.hiddenSize % cfg.numHeads !== 0) throw new RangeError(`'hiddenSize' ${cfg.hiddenSize} is not a multiple of 'numHeads' ${cfg.numHeads}`);
  if ((cfg.hiddenSize / cfg.numHeads) % 2 !== 0) throw new RangeError(`rotary embeddings need an even head size (got ${cfg.hiddenSize / cfg.numHeads})`);
  if (cfg.numHeads % numKeyValueHeads !== 0) throw new RangeError(`'numHeads' ${cfg.numHeads} is not a multiple of 'numKeyValueHeads' ${numKeyValueHeads}`);
  if (cfg.cache === 'static' && (cfg.opset ?? 24) < 24) throw new RangeError(`a static cache needs opset 24 (TensorScatter, Attention with nonpad_kv_seqlen); got ${cfg.opset}`);
  return {
    vocabSize: cfg.vocabSize,
    hiddenSize: cfg.hiddenSize,
    numLayers: cfg.numLayers,
    numHeads: cfg.numHeads,
    numKeyValueHeads,
    intermediateSize: cfg.intermediateSize,
    maxPositions: cfg.maxPositions,
    rmsNormEps: cfg.rmsNormEps ?? 1e-6,
    ropeTheta: cfg.ropeTheta ?? 10000,
    rotary: cfg.rotary ?? 'table',
    rmsInverse: cfg.rmsInverse ?? 'reciprocal',
    causalMask: cfg.causalMask ?? 'trilu',
    tieWordEmbeddings: cfg.tieWordEmbeddings ?? false,
    cache: cfg.cache ?? 'none',
    cacheLength: cfg.cacheLength ?? cfg.maxPositions,
    opset: cfg.opset ?? (cfg.cache === 'static' ? 24 : 17),
  };
}

export function buildLlama(config: LlamaConfig): OnnxModel {
  const cfg = resolve(config);
  const ctx = new ExportContext({ ...config, opset: cfg.opset });
  const dims = ['batch_size', 'sequence_length'];
  const inputIds = ctx.input('input_ids', DT.INT64, dims);
  const H = cfg.hiddenSize;
  const d = H / cfg.numHeads;
  let attend: AttentionCore;
  let positions: string;
  const caches: StaticCache[] = [];
  if (cfg.cache === 'static') {
    positions = ctx.input('position_ids', DT.INT64, dims);
    const cacheDims = ['batch_size', cfg.numKeyValueHeads, cfg.cacheLength, d];
    for (let i = 0; i < cfg.numLayers; i++) {
      caches.push({ key: ctx.input(`past_key_values.${i}.key`, DT.FLOAT, cacheDims), value: ctx.input(`past_key_values.${i}.value`, DT.FLOAT, cacheDims), layer: i });
    }
    const writeAt = ctx.input('write_indices', DT.INT64, ['batch_size']);
    const validLength = ctx.input('nonpad_kv_seqlen', DT.INT64, ['batch_size']);
    for (const c of caches) for (const which of ['key', 'value'] as const) ctx.output(`present.${c.layer}.${which}`, DT.FLOAT, cacheDims);
    attend = (scope, layer, q, k, v) => staticCacheAttention(ctx, scope, caches[layer]!, writeAt, validLength, q, k, v);
  } else {
    const mask = ctx.input('attention_mask', DT.INT64, dims);
    positions = rangePositionIds(ctx, '/model', inputIds);
    const causal = llamaMask(ctx, cfg, inputIds, mask);
    attend = (scope, _layer, q, k, v) => eagerAttention(ctx, cfg, scope, causal, q, k, v);
  }

  const embed = ctx.param('model.embed_tokens.weight', [cfg.vocabSize, H], { normal: ctx.initStd });
  let h = ctx.at('/model/embed_tokens').op('Gather', [embed, inputIds]);
  const [cos, sin] = rotaryTables(ctx, cfg, positions);
  for (let i = 0; i < cfg.numLayers; i++) h = llamaLayer(ctx, cfg, i, h, attend, cos, sin);
  h = rmsNorm(ctx, '/model/norm', 'model.norm', h, H, cfg.rmsNormEps, cfg.rmsInverse);

  let headValues: Float32Array | undefined;
  if (cfg.tieWordEmbeddings) headValues = transposed(ctx.normal('model.embed_tokens.weight', cfg.vocabSize * H), cfg.vocabSize, H);
  const w = ctx.linearWeight('lm_head', H, cfg.vocabSize, ctx.initStd, headValues);
  ctx.at('/lm_head').op('MatMul', [h, w], {}, { outputs: ['logits'] });
  ctx.output('logits', DT.FLOAT, ['batch_size', 'sequence_length', cfg.vocabSize]);
  return ctx.model();
}

/**
 * The 4-D additive mask [B, 1, S, S]: 0 where key j ≤ query i and key j is not padding,
 * finfo.min elsewhere (And of the causal and padding masks, then Where).
 */
function llamaMask(ctx: ExportContext, cfg: ResolvedLlamaConfig, inputIds: string, mask: string): string {
  const b = ctx.at('/model');
  const seq = dim(b, inputIds, 1);
  let allowed: string;
  if (cfg.causalMask === 'trilu') {
    const ones = b.op('ConstantOfShape', [shapeOf(b, [seq, seq])], { value: floatTensor('', [1], [1]) });
    allowed = b.op('Cast', [b.op('Trilu', [ones], { upper: 0 })], { to: DT.BOOL });
  } else {
    const range = b.op('Range', [constI64(b, [0], []), seq, constI64(b, [1], [])]);
    allowed = b.op('LessOrEqual', [unsqueeze(b, range, [0]), unsqueeze(b, range, [1])]);
  }
  const pad = b.op('Cast', [unsqueeze(b, mask, [1, 2])], { to: DT.BOOL });
  const both = b.op('And', [allowed, pad]);
  return b.op('Where', [both, scalarF32(b, 0), scalarF32(b, FLOAT32_MIN)]);
}

/** cos, sin of the rotary angles at `positions`, each [1, S, headDim]. */
function rotaryTables(ctx: ExportContext, cfg: ResolvedLlamaConfig, positions: string): [string, string] {
  const scope = '/model/rotary_emb';
  const b = ctx.at(scope);
  const d = cfg.hiddenSize / cfg.numHeads;
  const invFreq = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) invFreq[i] = 1 / cfg.ropeTheta ** ((2 * i) / d);
  if (cfg.rotary === 'table') {
    const cos = new Float32Array(cfg.maxPositions * d);
    const sin = new Float32Array(cfg.maxPositions * d);
    for (let p = 0; p < cfg.maxPositions; p++) {
      for (let i = 0; i < d; i++) {
        const angle = Math.fround(p * invFreq[i % (d / 2)]!);
        cos[p * d + i] = Math.cos(angle);
        sin[p * d + i] = Math.sin(angle);
      }
    }
    const cosT = ctx.param('model.rotary_emb.cos_cached', [cfg.maxPositions, d], cos);
    const sinT = ctx.param('model.rotary_emb.sin_cached', [cfg.maxPositions, d], sin);
    return [b.op('Gather', [cosT, positions]), b.op('Gather', [sinT, positions])];
  }
  // freqs = (inv_freq[None, :, None] @ position_ids[:, None, :].float()).transpose(1, 2)
  const inv = ctx.param('model.rotary_emb.inv_freq', [d / 2], invFreq);
  const invCol = unsqueeze(b, unsqueeze(b, inv, [0]), [2]);
  const pos = b.op('Cast', [unsqueeze(b, positions, [1])], { to: DT.FLOAT });
  const freqs = b.op('Transpose', [b.op('MatMul', [invCol, pos])], { perm: [0, 2, 1] });
  const emb = b.op('Concat', [freqs, freqs], { axis: -1 });
  return [b.op('Cos', [emb]), b.op('Sin', [emb])];
}

/** `x·cos + rotate_half(x)·sin` with rotate_half = Concat(−x[..., d/2:], x[..., :d/2]). */
function applyRotary(ctx: ExportContext, scope: string, x: string, cos4: string, sin4: string, d: number): string {
  const b = ctx.at(scope);
  const x1 = b.op('Slice', [x, constI64(b, [0]), constI64(b, [d / 2]), constI64(b, [-1]), constI64(b, [1])]);
  const x2 = b.op('Slice', [x, constI64(b, [d / 2]), constI64(b, [d]), constI64(b, [-1]), constI64(b, [1])]);
  const rotated = b.op('Concat', [b.op('Neg', [x2]), x1], { axis: -1 });
  return b.op('Add', [b.op('Mul', [x, cos4]), b.op('Mul', [rotated, sin4])]);
}

/** repeat_kv: [B, kv, S, D] → [B, kv·n, S, D] by Unsqueeze/Expand/Reshape. */
function repeatKv(ctx: ExportContext, scope: string, x: string, kvHeads: number, n: number, d: number): string {
  if (n === 1) return x;
  const b = ctx.at(scope);
  const batch = dim(b, x, 0);
  const seq = dim(b, x, 2);
  const expanded = b.op('Expand', [unsqueeze(b, x, [2]), shapeOf(b, [batch, kvHeads, n, seq, d])]);
  return reshape(b, expanded, shapeOf(b, [batch, kvHeads * n, seq, d]));
}

/** Attention over rotated q [B, H, S, D], k and v [B, kv, S, D]: the context [B, H, S, D]. */
type AttentionCore = (scope: string, layer: number, q: string, k: string, v: string) => string;

/** One layer's static cache inputs. */
interface StaticCache {
  key: string;
  value: string;
  layer: number;
}

/** HF's eager attention: repeat_kv, scores / √D + mask, Softmax, probabilities · v. */
function eagerAttention(ctx: ExportContext, cfg: ResolvedLlamaConfig, scope: string, mask: string, q: string, k: string, v: string): string {
  const b = ctx.at(scope);
  const d = cfg.hiddenSize / cfg.numHeads;
  const rep = cfg.numHeads / cfg.numKeyValueHeads;
  const kAll = repeatKv(ctx, scope, k, cfg.numKeyValueHeads, rep, d);
  const vAll = repeatKv(ctx, scope, v, cfg.numKeyValueHeads, rep, d);
  const scores = b.op('Div', [b.op('MatMul', [q, b.op('Transpose', [kAll], { perm: [0, 1, 3, 2] })]), scalarF32(b, Math.sqrt(d))]);
  const probs = b.op('Softmax', [b.op('Add', [scores, mask])], { axis: -1 });
  return b.op('MatMul', [probs, vAll]);
}

/**
 * The static-cache form: k, v written into the layer's cache at `write_indices` (TensorScatter,
 * along the sequence axis), then ONNX Attention over the whole cache, causal, with the keys at
 * or after `nonpad_kv_seqlen` hidden (GQA is the op's own: kv heads are shared by consecutive
 * query heads, as repeat_kv does).
 */
function staticCacheAttention(ctx: ExportContext, scope: string, cache: StaticCache, writeAt: string, validLength: string, q: string, k: string, v: string): string {
  const b = ctx.at(scope);
  const presentK = b.op('TensorScatter', [cache.key, k, writeAt], { axis: -2 }, { outputs: [`present.${cache.layer}.key`] });
  const presentV = b.op('TensorScatter', [cache.value, v, writeAt], { axis: -2 }, { outputs: [`present.${cache.layer}.value`] });
  return b.op('Attention', [q, presentK, presentV, '', '', '', validLength], { is_causal: 1 });
}

function llamaAttention(ctx: ExportContext, cfg: ResolvedLlamaConfig, layer: number, x: string, attend: AttentionCore, cos: string, sin: string): string {
  const scope = `/model/layers.${layer}/self_attn`;
  const module = `model.layers.${layer}.self_attn`;
  const b = ctx.at(scope);
  const H = cfg.hiddenSize;
  const d = H / cfg.numHeads;
  const kvH = cfg.numKeyValueHeads * d;
  const q = linear(ctx, `${scope}/q_proj`, `${module}.q_proj`, x, H, H, { bias: false });
  const k = linear(ctx, `${scope}/k_proj`, `${module}.k_proj`, x, H, kvH, { bias: false });
  const v = linear(ctx, `${scope}/v_proj`, `${module}.v_proj`, x, H, kvH, { bias: false });
  const heads = (t: string, n: number) => b.op('Transpose', [splitHeads(ctx, scope, t, n, d)], { perm: [0, 2, 1, 3] });
  const qh = heads(q, cfg.numHeads);
  const kh = heads(k, cfg.numKeyValueHeads);
  const vh = heads(v, cfg.numKeyValueHeads);
  const cos4 = unsqueeze(b, cos, [1]);
  const sin4 = unsqueeze(b, sin, [1]);
  const qr = applyRotary(ctx, scope, qh, cos4, sin4, d);
  const kr = applyRotary(ctx, scope, kh, cos4, sin4, d);
  const context = mergeHeads(ctx, scope, attend(scope, layer, qr, kr, vh), H);
  return linear(ctx, `${scope}/o_proj`, `${module}.o_proj`, context, H, H, { bias: false });
}

function llamaMlp(ctx: ExportContext, cfg: ResolvedLlamaConfig, layer: number, x: string): string {
  const scope = `/model/layers.${layer}/mlp`;
  const module = `model.layers.${layer}.mlp`;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const gate = silu(ctx, `${scope}/act_fn`, linear(ctx, `${scope}/gate_proj`, `${module}.gate_proj`, x, H, I, { bias: false }));
  const up = linear(ctx, `${scope}/up_proj`, `${module}.up_proj`, x, H, I, { bias: false });
  const prod = ctx.at(scope).op('Mul', [gate, up]);
  return linear(ctx, `${scope}/down_proj`, `${module}.down_proj`, prod, I, H, { bias: false });
}

function llamaLayer(ctx: ExportContext, cfg: ResolvedLlamaConfig, layer: number, x: string, attend: AttentionCore, cos: string, sin: string): string {
  const scope = `/model/layers.${layer}`;
  const module = `model.layers.${layer}`;
  const b = ctx.at(scope);
  const normed = rmsNorm(ctx, `${scope}/input_layernorm`, `${module}.input_layernorm`, x, cfg.hiddenSize, cfg.rmsNormEps, cfg.rmsInverse);
  const h = b.op('Add', [x, llamaAttention(ctx, cfg, layer, normed, attend, cos, sin)]);
  const normed2 = rmsNorm(ctx, `${scope}/post_attention_layernorm`, `${module}.post_attention_layernorm`, h, cfg.hiddenSize, cfg.rmsNormEps, cfg.rmsInverse);
  return b.op('Add', [h, llamaMlp(ctx, cfg, layer, normed2)]);
}
