/**
 * A ViTForImageClassification-like model in the layout of a TorchScript / optimum export: Conv
 * patch embedding (`/vit/embeddings/patch_embeddings/projection/Conv`), flatten + Transpose, a
 * cls token Expand'ed and Concat'ed in front, position embeddings, pre-LN encoder layers
 * (`/vit/encoder/layer.N/attention/attention/query/MatMul`, …) with GELU, final LayerNorm, and
 * a classifier on token 0 → `logits [batch_size, numLabels]`.
 */
import { DataType as DT } from '../../src/onnx/dtype.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { ExportContext, constI64, dim, reshape, type CommonConfig, type Opset } from './export-context.ts';
import { encoderSelfAttention, gelu, headLinear, layerNorm, linear, type GeluStyle, type LayerNormStyle } from './blocks.ts';
import { firstToken } from './bert.ts';

export interface VitConfig extends CommonConfig {
  /** Square images of this many pixels a side. */
  imageSize: number;
  patchSize: number;
  /** Default 3. */
  numChannels?: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  numLabels: number;
  /** Default 1e-12. */
  layerNormEps?: number;
  /** Default `fused` at opset ≥ 17. */
  layerNorm?: LayerNormStyle;
  /** Default `op` (Gelu) at opset ≥ 20, else `erf`. */
  gelu?: GeluStyle;
  /** Classifier as Gemm (default) or MatMul + Add. */
  head?: 'gemm' | 'matmul';
  /** Token 0 by Gather (default) or Slice + Squeeze. */
  firstToken?: 'gather' | 'slice';
}

type ResolvedVitConfig = Required<Omit<VitConfig, keyof CommonConfig>> & { opset: Opset };

function resolve(cfg: VitConfig): ResolvedVitConfig {
  const opset = cfg.opset ?? 20;
  if (cfg.imageSize % cfg.patchSize !== 0) throw new RangeError(`'imageSize' ${cfg.imageSize} is not a multiple of 'patchSize' ${cfg.patchSize}`);
  if (cfg.hiddenSize % cfg.numHeads !== 0) throw new RangeError(`'hiddenSize' ${cfg.hiddenSize} is not a multiple of 'numHeads' ${cfg.numHeads}`);
  return {
    imageSize: cfg.imageSize,
    patchSize: cfg.patchSize,
    numChannels: cfg.numChannels ?? 3,
    hiddenSize: cfg.hiddenSize,
    numLayers: cfg.numLayers,
    numHeads: cfg.numHeads,
    intermediateSize: cfg.intermediateSize,
    numLabels: cfg.numLabels,
    layerNormEps: cfg.layerNormEps ?? 1e-12,
    layerNorm: cfg.layerNorm ?? (opset >= 17 ? 'fused' : 'decomposed'),
    gelu: cfg.gelu ?? (opset >= 20 ? 'op' : 'erf'),
    head: cfg.head ?? 'gemm',
    firstToken: cfg.firstToken ?? 'gather',
    opset,
  };
}

export function buildVit(config: VitConfig): OnnxModel {
  const cfg = resolve(config);
  const ctx = new ExportContext({ ...config, opset: cfg.opset });
  const pixels = ctx.input('pixel_values', DT.FLOAT, ['batch_size', cfg.numChannels, cfg.imageSize, cfg.imageSize]);
  let h = vitEmbeddings(ctx, cfg, pixels);
  for (let i = 0; i < cfg.numLayers; i++) h = vitLayer(ctx, cfg, i, h);
  h = layerNorm(ctx, cfg.layerNorm, '/vit/layernorm', 'vit.layernorm', h, cfg.hiddenSize, cfg.layerNormEps);
  // sequence_output[:, 0, :] in the top-level module: node `/Gather`.
  const first = firstToken(ctx, cfg.firstToken, '', h);
  headLinear(ctx, cfg.head, '/classifier', 'classifier', first, cfg.hiddenSize, cfg.numLabels, 'logits');
  ctx.output('logits', DT.FLOAT, ['batch_size', cfg.numLabels]);
  return ctx.model();
}

/** Conv patches → [B, N, H], cls token in front, + position embeddings. */
function vitEmbeddings(ctx: ExportContext, cfg: ResolvedVitConfig, pixels: string): string {
  const H = cfg.hiddenSize;
  const p = cfg.patchSize;
  const numPatches = (cfg.imageSize / p) ** 2;
  const conv = ctx.at('/vit/embeddings/patch_embeddings/projection');
  const w = ctx.param('vit.embeddings.patch_embeddings.projection.weight', [H, cfg.numChannels, p, p], { normal: ctx.initStd });
  const bias = ctx.param('vit.embeddings.patch_embeddings.projection.bias', [H], ctx.biasInit());
  const patches = conv.op('Conv', [pixels, w, bias], { dilations: [1, 1], group: 1, kernel_shape: [p, p], pads: [0, 0, 0, 0], strides: [p, p] });
  // flatten(2).transpose(1, 2): Shape[:2] ++ [-1] → Reshape → Transpose.
  const pe = ctx.at('/vit/embeddings/patch_embeddings');
  const lead = pe.op('Slice', [pe.op('Shape', [patches]), constI64(pe, [0]), constI64(pe, [2]), constI64(pe, [0]), constI64(pe, [1])]);
  const flat = reshape(pe, patches, pe.op('Concat', [lead, constI64(pe, [-1])], { axis: 0 }));
  const tokens = pe.op('Transpose', [flat], { perm: [0, 2, 1] });

  const b = ctx.at('/vit/embeddings');
  const cls = ctx.param('vit.embeddings.cls_token', [1, 1, H], { normal: ctx.initStd });
  const batch = b.op('Unsqueeze', [dim(b, pixels, 0), constI64(b, [0])]);
  const clsShape = b.op('Concat', [batch, constI64(b, [1, 1])], { axis: 0 });
  const clsTokens = b.op('Expand', [cls, clsShape]);
  const seq = b.op('Concat', [clsTokens, tokens], { axis: 1 });
  const pos = ctx.param('vit.embeddings.position_embeddings', [1, numPatches + 1, H], { normal: ctx.initStd });
  return b.op('Add', [seq, pos]);
}

/** Pre-LN layer: x + attn(LN(x)), then h + mlp(LN(h)). */
function vitLayer(ctx: ExportContext, cfg: ResolvedVitConfig, layer: number, x: string): string {
  const scope = `/vit/encoder/layer.${layer}`;
  const module = `vit.encoder.layer.${layer}`;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const ln1 = layerNorm(ctx, cfg.layerNorm, `${scope}/layernorm_before`, `${module}.layernorm_before`, x, H, cfg.layerNormEps);
  const context = encoderSelfAttention(ctx, `${scope}/attention/attention`, `${module}.attention.attention`, ln1, H, cfg.numHeads);
  const attnOut = linear(ctx, `${scope}/attention/output/dense`, `${module}.attention.output.dense`, context, H, H);
  const h = ctx.at(scope).op('Add', [attnOut, x]);
  const ln2 = layerNorm(ctx, cfg.layerNorm, `${scope}/layernorm_after`, `${module}.layernorm_after`, h, H, cfg.layerNormEps);
  const inter = linear(ctx, `${scope}/intermediate/dense`, `${module}.intermediate.dense`, ln2, H, I);
  const act = gelu(ctx, cfg.gelu, `${scope}/intermediate/intermediate_act_fn`, inter);
  const out = linear(ctx, `${scope}/output/dense`, `${module}.output.dense`, act, I, H);
  return ctx.at(`${scope}/output`).op('Add', [out, h]);
}
