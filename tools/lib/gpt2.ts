/**
 * A GPT2LMHeadModel-like decoder in the layout of a TorchScript export (no KV cache): Conv1D
 * layers as Reshape → Gemm(x2d, W[in,out], b) → Reshape (`/transformer/h.N/attn/c_attn/Gemm`,
 * weight `transformer.h.N.attn.c_attn.weight`) or as MatMul + Add, qkv Split, causal Where on a
 * sliced lower-triangular buffer plus the additive padding mask, gelu_new (Pow/Mul/Add/Tanh),
 * lm_head tied to wte (its transposed values as `onnx::MatMul_<n>`).
 */
import { DataType as DT } from '../../src/onnx/dtype.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { ExportContext, FLOAT32_MIN, constBool, constI64, dim, scalarF32, transposed, unsqueeze, type CommonConfig, type Opset } from './export-context.ts';
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
    opset,
  };
}

export function buildGpt2(config: Gpt2Config): OnnxModel {
  const cfg = resolve(config);
  const ctx = new ExportContext({ ...config, opset: cfg.opset });
  const dims = ['batch_size', 'sequence_length'];
  const inputIds = ctx.input('input_ids', DT.INT64, dims);
  const mask = ctx.input('attention_mask', DT.INT64, dims);
  const H = cfg.hiddenSize;
  const b = ctx.at('/transformer');

  const positions = rangePositionIds(ctx, '/transformer', inputIds);
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
  for (let i = 0; i < cfg.numLayers; i++) h = gpt2Block(ctx, cfg, i, h, causalBuffer, padding);
  h = layerNorm(ctx, cfg.layerNorm, '/transformer/ln_f', 'transformer.ln_f', h, H, cfg.layerNormEps);

  const head = transposed(ctx.normal('transformer.wte.weight', cfg.vocabSize * H), cfg.vocabSize, H);
  const w = ctx.linearWeight('lm_head', H, cfg.vocabSize, ctx.initStd, head);
  ctx.at('/lm_head').op('MatMul', [h, w], {}, { outputs: ['logits'] });
  ctx.output('logits', DT.FLOAT, ['batch_size', 'sequence_length', cfg.vocabSize]);
  return ctx.model();
}

function gpt2Attention(ctx: ExportContext, cfg: ResolvedGpt2Config, layer: number, x: string, causalBuffer: string, padding: string): string {
  const scope = `/transformer/h.${layer}/attn`;
  const module = `transformer.h.${layer}.attn`;
  const b = ctx.at(scope);
  const H = cfg.hiddenSize;
  const d = H / cfg.numHeads;
  const qkv = conv1d(ctx, cfg.conv1d, `${scope}/c_attn`, `${module}.c_attn`, x, H, 3 * H);
  const [q, k, v] = b.opN('Split', [qkv, constI64(b, [H, H, H])], { axis: 2 }, { outputs: 3 }) as [string, string, string];
  const qT = b.op('Transpose', [splitHeads(ctx, scope, q, cfg.numHeads, d)], { perm: [0, 2, 1, 3] });
  const kT = b.op('Transpose', [splitHeads(ctx, scope, k, cfg.numHeads, d)], { perm: [0, 2, 3, 1] });
  const vT = b.op('Transpose', [splitHeads(ctx, scope, v, cfg.numHeads, d)], { perm: [0, 2, 1, 3] });
  const scores = b.op('Div', [b.op('MatMul', [qT, kT]), scalarF32(b, Math.sqrt(d))]);
  // causal = bias[:, :, :S, :S]
  const seq = unsqueeze(b, dim(b, qT, 2), [0]);
  const zeros = constI64(b, [0, 0]);
  const ends = b.op('Concat', [seq, seq], { axis: 0 });
  const causal = b.op('Slice', [causalBuffer, zeros, ends, constI64(b, [2, 3]), constI64(b, [1, 1])]);
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

function gpt2Block(ctx: ExportContext, cfg: ResolvedGpt2Config, layer: number, x: string, causalBuffer: string, padding: string): string {
  const scope = `/transformer/h.${layer}`;
  const module = `transformer.h.${layer}`;
  const b = ctx.at(scope);
  const ln1 = layerNorm(ctx, cfg.layerNorm, `${scope}/ln_1`, `${module}.ln_1`, x, cfg.hiddenSize, cfg.layerNormEps);
  const h = b.op('Add', [gpt2Attention(ctx, cfg, layer, ln1, causalBuffer, padding), x]);
  const ln2 = layerNorm(ctx, cfg.layerNorm, `${scope}/ln_2`, `${module}.ln_2`, h, cfg.hiddenSize, cfg.layerNormEps);
  return b.op('Add', [h, gpt2Mlp(ctx, cfg, layer, ln2)]);
}
