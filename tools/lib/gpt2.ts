/**
 * A GPT2LMHeadModel-like decoder in the layout of a TorchScript export (optionally with a KV
 * cache, stacked `past_N` or optimum's `past_key_values.N.key/value`): Conv1D
 * layers as Reshape → Gemm(x2d, W[in,out], b) → Reshape (`/transformer/h.N/attn/c_attn/Gemm`,
 * weight `transformer.h.N.attn.c_attn.weight`) or as MatMul + Add, qkv Split, causal Where on a
 * sliced lower-triangular buffer plus the additive padding mask, gelu_new (Pow/Mul/Add/Tanh),
 * lm_head tied to wte (its transposed values as `onnx::MatMul_<n>`).
 */
import { DataType as DT } from '../../src/onnx/dtype.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { ExportContext, FLOAT32_MIN, constBool, constI64, dim, scalarF32, scalarI64, transposed, unsqueeze, type CommonConfig, type Opset } from './export-context.ts';
import { additivePaddingMask, conv1d, geluNew, layerNorm, mergeHeads, rangePositionIds, splitHeads, type LayerNormStyle } from './blocks.ts';

export interface Gpt2Config extends CommonConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** n_inner (default 4·hidden). */
  intermediateSize?: number;
  /** n_positions. */
  maxPositions: number;
  /** Default 1e-5. */
  layerNormEps?: number;
  /** Default `decomposed` below opset 17, `fused` from 17. */
  layerNorm?: LayerNormStyle;
  /** Conv1D as Reshape/Gemm/Reshape (default, torch's export of addmm) or MatMul + Add. */
  conv1d?: 'gemm' | 'matmul';
  /**
   * The KV cache: `none` (default); `stacked`, one `past_N` [2, B, H, P, D] input and `present_N`
   * output per layer (ONNX Runtime's GPT-2 exports); `split`, `past_key_values.N.key` / `.value`
   * [B, H, P, D] inputs and `present.N.key` / `.value` outputs (optimum). With a cache the
   * attention mask covers past + new tokens and positions start at the past length.
   */
  cache?: 'none' | 'stacked' | 'split';
  /** Positions from a `position_ids` input (optimum's and ONNX Runtime's decoders) instead of a Range. */
  positionIdsInput?: boolean;
}

type ResolvedGpt2Config = Required<Omit<Gpt2Config, keyof CommonConfig>> & { opset: Opset };

function resolve(cfg: Gpt2Config): ResolvedGpt2Config {
  const opset = cfg.opset ?? 14;
  if (cfg.hiddenSize % cfg.numHeads !== 0) throw new RangeError(`'hiddenSize' ${cfg.hiddenSize} is not a multiple of 'numHeads' ${cfg.numHeads}`);
  return {
    vocabSize: cfg.vocabSize,
    hiddenSize: cfg.hiddenSize,
    numLayers: cfg.numLayers,
    numHeads: cfg.numHeads,
    intermediateSize: cfg.intermediateSize ?? 4 * cfg.hiddenSize,
    maxPositions: cfg.maxPositions,
    layerNormEps: cfg.layerNormEps ?? 1e-5,
    layerNorm: cfg.layerNorm ?? (opset >= 17 ? 'fused' : 'decomposed'),
    conv1d: cfg.conv1d ?? 'gemm',
    cache: cfg.cache ?? 'none',
    positionIdsInput: cfg.positionIdsInput ?? false,
    opset,
  };
}

export function buildGpt2(config: Gpt2Config): OnnxModel {
  const cfg = resolve(config);
  const ctx = new ExportContext({ ...config, opset: cfg.opset });
  const dims = ['batch_size', 'sequence_length'];
  const H = cfg.hiddenSize;
  const d = H / cfg.numHeads;
  const inputIds = ctx.input('input_ids', DT.INT64, dims);
  const withCache = cfg.cache !== 'none';
  const mask = ctx.input('attention_mask', DT.INT64, withCache ? ['batch_size', 'past_sequence_length + sequence_length'] : dims);
  const positionIds = cfg.positionIdsInput ? ctx.input('position_ids', DT.INT64, dims) : undefined;
  const pastDims = cfg.cache === 'stacked' ? [2, 'batch_size', cfg.numHeads, 'past_sequence_length', d] : ['batch_size', cfg.numHeads, 'past_sequence_length', d];
  const presentDims = pastDims.map((x) => (x === 'past_sequence_length' ? 'total_sequence_length' : x));
  const caches: LayerCache[] = [];
  for (let i = 0; i < cfg.numLayers && withCache; i++) {
    if (cfg.cache === 'stacked') {
      caches.push({ past: [ctx.input(`past_${i}`, DT.FLOAT, pastDims)], present: [`present_${i}`] });
    } else {
      caches.push({ past: [ctx.input(`past_key_values.${i}.key`, DT.FLOAT, pastDims), ctx.input(`past_key_values.${i}.value`, DT.FLOAT, pastDims)], present: [`present.${i}.key`, `present.${i}.value`] });
    }
  }
  const b = ctx.at('/transformer');

  // Positions past_length … past_length + S − 1 (0 … S − 1 without a cache).
  let positions: string;
  if (positionIds) positions = positionIds;
  else if (!withCache) positions = rangePositionIds(ctx, '/transformer', inputIds);
  else {
    const pastLen = dim(b, caches[0]!.past[0]!, cfg.cache === 'stacked' ? 3 : 2);
    const end = b.op('Add', [pastLen, dim(b, inputIds, 1)]);
    positions = unsqueeze(b, b.op('Range', [pastLen, end, constI64(b, [1], [])]), [0]);
  }
  const padding = additivePaddingMask(ctx, '/transformer', mask);
  // HF's `bias` buffer: lower-triangular [1, 1, P, P] bool, shared by every layer.
  const P = cfg.maxPositions;
  const tril = new Uint8Array(P * P);
  for (let i = 0; i < P; i++) tril.fill(1, i * P, i * P + i + 1);
  const causalBuffer = constBool(b, tril, [1, 1, P, P]);

  const wte = ctx.param('transformer.wte.weight', [cfg.vocabSize, H], { normal: ctx.initStd });
  const wpe = ctx.param('transformer.wpe.weight', [P, H], { normal: ctx.initStd });
  const tok = ctx.at('/transformer/wte').op('Gather', [wte, inputIds]);
  const pos = ctx.at('/transformer/wpe').op('Gather', [wpe, positions]);
  let h = b.op('Add', [tok, pos]);
  for (let i = 0; i < cfg.numLayers; i++) h = gpt2Block(ctx, cfg, i, h, causalBuffer, padding, caches[i]);
  h = layerNorm(ctx, cfg.layerNorm, '/transformer/ln_f', 'transformer.ln_f', h, H, cfg.layerNormEps);

  const head = transposed(ctx.normal('transformer.wte.weight', cfg.vocabSize * H), cfg.vocabSize, H);
  const w = ctx.linearWeight('lm_head', H, cfg.vocabSize, ctx.initStd, head);
  ctx.at('/lm_head').op('MatMul', [h, w], {}, { outputs: ['logits'] });
  ctx.output('logits', DT.FLOAT, ['batch_size', 'sequence_length', cfg.vocabSize]);
  for (const c of caches) for (const name of c.present) ctx.output(name, DT.FLOAT, presentDims);
  return ctx.model();
}

/** One layer's cache: its past inputs and the names of its present outputs (stacked: one each). */
interface LayerCache {
  past: string[];
  present: string[];
}

function gpt2Attention(ctx: ExportContext, cfg: ResolvedGpt2Config, layer: number, x: string, causalBuffer: string, padding: string, cache?: LayerCache): string {
  const scope = `/transformer/h.${layer}/attn`;
  const module = `transformer.h.${layer}.attn`;
  const b = ctx.at(scope);
  const H = cfg.hiddenSize;
  const d = H / cfg.numHeads;
  const qkv = conv1d(ctx, cfg.conv1d, `${scope}/c_attn`, `${module}.c_attn`, x, H, 3 * H);
  const [q, k, v] = b.opN('Split', [qkv, constI64(b, [H, H, H])], { axis: 2 }, { outputs: 3 }) as [string, string, string];
  const qT = b.op('Transpose', [splitHeads(ctx, scope, q, cfg.numHeads, d)], { perm: [0, 2, 1, 3] });
  let kT: string;
  let vT = b.op('Transpose', [splitHeads(ctx, scope, v, cfg.numHeads, d)], { perm: [0, 2, 1, 3] });
  if (!cache) kT = b.op('Transpose', [splitHeads(ctx, scope, k, cfg.numHeads, d)], { perm: [0, 2, 3, 1] });
  else {
    // key = cat(past_key, key, dim=-2), value likewise; present = (key, value) [B, H, P + S, D].
    let kh = b.op('Transpose', [splitHeads(ctx, scope, k, cfg.numHeads, d)], { perm: [0, 2, 1, 3] });
    const [pastK, pastV] =
      cache.past.length === 2 ? [cache.past[0]!, cache.past[1]!] : [0, 1].map((i) => b.op('Gather', [cache.past[0]!, scalarI64(b, i)], { axis: 0 }));
    kh = b.op('Concat', [pastK!, kh], { axis: -2 });
    vT = b.op('Concat', [pastV!, vT], { axis: -2 });
    if (cache.present.length === 2) {
      b.op('Identity', [kh], {}, { outputs: [cache.present[0]!] });
      b.op('Identity', [vT], {}, { outputs: [cache.present[1]!] });
    } else b.op('Concat', [unsqueeze(b, kh, [0]), unsqueeze(b, vT, [0])], { axis: 0 }, { outputs: [cache.present[0]!] });
    kT = b.op('Transpose', [kh], { perm: [0, 1, 3, 2] });
  }
  const scores = b.op('Div', [b.op('MatMul', [qT, kT]), scalarF32(b, Math.sqrt(d))]);
  // causal = bias[:, :, :S, :S], or bias[:, :, L − S : L, :L] with L = past + S keys
  const seq = unsqueeze(b, dim(b, qT, 2), [0]);
  let causal: string;
  if (!cache) {
    const zeros = constI64(b, [0, 0]);
    const ends = b.op('Concat', [seq, seq], { axis: 0 });
    causal = b.op('Slice', [causalBuffer, zeros, ends, constI64(b, [2, 3]), constI64(b, [1, 1])]);
  } else {
    const keys = unsqueeze(b, dim(b, kT, 3), [0]);
    const starts = b.op('Concat', [b.op('Sub', [keys, seq]), constI64(b, [0])], { axis: 0 });
    const ends = b.op('Concat', [keys, keys], { axis: 0 });
    causal = b.op('Slice', [causalBuffer, starts, ends, constI64(b, [2, 3]), constI64(b, [1, 1])]);
  }
  const masked = b.op('Where', [causal, scores, scalarF32(b, FLOAT32_MIN)]);
  const probs = b.op('Softmax', [b.op('Add', [masked, padding])], { axis: -1 });
  const context = mergeHeads(ctx, scope, b.op('MatMul', [probs, vT]), H);
  const projStd = ctx.initStd / Math.sqrt(2 * cfg.numLayers);
  return conv1d(ctx, cfg.conv1d, `${scope}/c_proj`, `${module}.c_proj`, context, H, H, projStd);
}

function gpt2Mlp(ctx: ExportContext, cfg: ResolvedGpt2Config, layer: number, x: string): string {
  const scope = `/transformer/h.${layer}/mlp`;
  const module = `transformer.h.${layer}.mlp`;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const fc = conv1d(ctx, cfg.conv1d, `${scope}/c_fc`, `${module}.c_fc`, x, H, I);
  const act = geluNew(ctx, `${scope}/act`, fc);
  return conv1d(ctx, cfg.conv1d, `${scope}/c_proj`, `${module}.c_proj`, act, I, H, ctx.initStd / Math.sqrt(2 * cfg.numLayers));
}

function gpt2Block(ctx: ExportContext, cfg: ResolvedGpt2Config, layer: number, x: string, causalBuffer: string, padding: string, cache?: LayerCache): string {
  const scope = `/transformer/h.${layer}`;
  const module = `transformer.h.${layer}`;
  const b = ctx.at(scope);
  const ln1 = layerNorm(ctx, cfg.layerNorm, `${scope}/ln_1`, `${module}.ln_1`, x, cfg.hiddenSize, cfg.layerNormEps);
  const h = b.op('Add', [gpt2Attention(ctx, cfg, layer, ln1, causalBuffer, padding, cache), x]);
  const ln2 = layerNorm(ctx, cfg.layerNorm, `${scope}/ln_2`, `${module}.ln_2`, h, cfg.hiddenSize, cfg.layerNormEps);
  return b.op('Add', [h, gpt2Mlp(ctx, cfg, layer, ln2)]);
}
