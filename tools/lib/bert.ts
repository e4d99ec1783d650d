/**
 * A BertForSequenceClassification-like ONNX model in the layout of a TorchScript / optimum
 * export: scopes `/bert/embeddings`, `/bert/encoder/layer.N/attention/self/query`, …, linear
 * weights as [in, out] initializers `onnx::MatMul_<n>` with biases `<module>.bias`, pooler and
 * classifier as Gemm (transB=1) on 2-D input, output `logits [batch_size, numLabels]`; or the
 * token-classification, question-answering, masked-LM and pre-training heads (`task`).
 */
import { DataType as DT } from '../../src/onnx/dtype.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { ExportContext, constI64, dim, scalarI64, transposed, unsqueeze, type CommonConfig, type Opset } from './export-context.ts';
import {
  additivePaddingMask,
  encoderSelfAttention,
  gelu,
  headLinear,
  layerNorm,
  linear,
  rangePositionIds,
  type GeluStyle,
  type LayerNormStyle,
} from './blocks.ts';

export interface BertConfig extends CommonConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** max_position_embeddings. */
  maxPositions: number;
  numLabels: number;
  /** type_vocab_size (default 2). */
  typeVocabSize?: number;
  /** Default 1e-12, as BERT. */
  layerNormEps?: number;
  /** Default: `fused` (LayerNormalization) at opset ≥ 17, else `decomposed`. */
  layerNorm?: LayerNormStyle;
  /** Default: `op` (Gelu) at opset ≥ 20, else `erf`. */
  gelu?: GeluStyle;
  /** Position ids as a Slice of the `position_ids` buffer (default) or Range over the length. */
  positionIds?: 'slice' | 'range';
  /** Pooler and classifier as Gemm (default, torch's export of Linear on 2-D input) or MatMul + Add. */
  head?: 'gemm' | 'matmul';
  /** Pooler takes token 0 by Gather (default) or Slice + Squeeze. */
  firstToken?: 'gather' | 'slice';
  /**
   * The head (default `seq-cls`, BertForSequenceClassification → `logits [B, numLabels]`):
   * `token-cls` (BertForTokenClassification, `classifier` on every token → `logits [B, S, numLabels]`),
   * `qa` (BertForQuestionAnswering, `qa_outputs` → `start_logits`, `end_logits [B, S]`),
   * `masked-lm` (BertForMaskedLM, `cls.predictions` with the decoder tied to the word
   * embeddings → `logits [B, S, vocab]`), `pretraining` (BertForPreTraining: the MLM head and the
   * pooler + `cls.seq_relationship` → `prediction_logits`, `seq_relationship_logits [B, 2]`).
   * Only seq-cls and pretraining have the pooler, as in transformers.
   */
  task?: 'seq-cls' | 'token-cls' | 'qa' | 'masked-lm' | 'pretraining';
}

export type ResolvedBertConfig = Required<Omit<BertConfig, keyof CommonConfig>> & { opset: Opset };

export function resolveBertConfig(cfg: BertConfig): ResolvedBertConfig {
  const opset = cfg.opset ?? 17;
  if (cfg.hiddenSize % cfg.numHeads !== 0) throw new RangeError(`'hiddenSize' ${cfg.hiddenSize} is not a multiple of 'numHeads' ${cfg.numHeads}`);
  return {
    vocabSize: cfg.vocabSize,
    hiddenSize: cfg.hiddenSize,
    numLayers: cfg.numLayers,
    numHeads: cfg.numHeads,
    intermediateSize: cfg.intermediateSize,
    maxPositions: cfg.maxPositions,
    numLabels: cfg.numLabels,
    typeVocabSize: cfg.typeVocabSize ?? 2,
    layerNormEps: cfg.layerNormEps ?? 1e-12,
    layerNorm: cfg.layerNorm ?? (opset >= 17 ? 'fused' : 'decomposed'),
    gelu: cfg.gelu ?? (opset >= 20 ? 'op' : 'erf'),
    positionIds: cfg.positionIds ?? 'slice',
    head: cfg.head ?? 'gemm',
    firstToken: cfg.firstToken ?? 'gather',
    task: cfg.task ?? 'seq-cls',
    opset,
  };
}

/** Builds a BERT sequence classifier; same config and seed → identical bytes. */
export function buildBert(config: BertConfig): OnnxModel {
  const cfg = resolveBertConfig(config);
  const ctx = new ExportContext({ ...config, opset: cfg.opset });
  const dims = ['batch_size', 'sequence_length'];
  const inputIds = ctx.input('input_ids', DT.INT64, dims);
  const mask = ctx.input('attention_mask', DT.INT64, dims);
  const tokenTypes = ctx.input('token_type_ids', DT.INT64, dims);

  const extendedMask = additivePaddingMask(ctx, '/bert', mask);
  let h = bertEmbeddings(ctx, cfg, inputIds, tokenTypes);
  for (let i = 0; i < cfg.numLayers; i++) h = bertLayer(ctx, cfg, i, h, extendedMask);
  const H = cfg.hiddenSize;
  const perToken = ['batch_size', 'sequence_length'];
  switch (cfg.task) {
    case 'seq-cls': {
      const pooled = bertPooler(ctx, cfg, h);
      headLinear(ctx, cfg.head, '/classifier', 'classifier', pooled, H, cfg.numLabels, 'logits');
      ctx.output('logits', DT.FLOAT, ['batch_size', cfg.numLabels]);
      break;
    }
    case 'token-cls': {
      const b = ctx.at('/classifier');
      b.op('Identity', [linear(ctx, '/classifier', 'classifier', h, H, cfg.numLabels)], {}, { outputs: ['logits'] });
      ctx.output('logits', DT.FLOAT, [...perToken, cfg.numLabels]);
      break;
    }
    case 'qa': {
      // logits.split(1, dim=-1), each squeezed: start_logits, end_logits [B, S]
      const logits = linear(ctx, '/qa_outputs', 'qa_outputs', h, H, 2);
      const b = ctx.at('');
      const [start, end] = b.opN('Split', [logits, constI64(b, [1, 1])], { axis: -1 }, { outputs: 2 }) as [string, string];
      b.op('Squeeze', [start, constI64(b, [-1])], {}, { outputs: ['start_logits'] });
      b.op('Squeeze', [end, constI64(b, [-1])], {}, { outputs: ['end_logits'] });
      ctx.output('start_logits', DT.FLOAT, perToken);
      ctx.output('end_logits', DT.FLOAT, perToken);
      break;
    }
    case 'masked-lm':
      bertMlmHead(ctx, cfg, h, 'logits');
      ctx.output('logits', DT.FLOAT, [...perToken, cfg.vocabSize]);
      break;
    case 'pretraining': {
      bertMlmHead(ctx, cfg, h, 'prediction_logits');
      ctx.output('prediction_logits', DT.FLOAT, [...perToken, cfg.vocabSize]);
      const pooled = bertPooler(ctx, cfg, h);
      headLinear(ctx, cfg.head, '/cls/seq_relationship', 'cls.seq_relationship', pooled, H, 2, 'seq_relationship_logits');
      ctx.output('seq_relationship_logits', DT.FLOAT, ['batch_size', 2]);
      break;
    }
  }
  return ctx.model();
}

/**
 * BertOnlyMLMHead: transform (dense, GELU, LayerNorm), then the decoder tied to the word
 * embeddings (their transposed values as `onnx::MatMul_<n>`) plus `cls.predictions.bias`.
 */
function bertMlmHead(ctx: ExportContext, cfg: ResolvedBertConfig, h: string, output: string): string {
  const H = cfg.hiddenSize;
  const dense = linear(ctx, '/cls/predictions/transform/dense', 'cls.predictions.transform.dense', h, H, H);
  const act = gelu(ctx, cfg.gelu, '/cls/predictions/transform/transform_act_fn', dense);
  const normed = layerNorm(ctx, cfg.layerNorm, '/cls/predictions/transform/LayerNorm', 'cls.predictions.transform.LayerNorm', act, H, cfg.layerNormEps);
  const tied = transposed(ctx.normal('bert.embeddings.word_embeddings.weight', cfg.vocabSize * H), cfg.vocabSize, H);
  const w = ctx.linearWeight('cls.predictions.decoder', H, cfg.vocabSize, ctx.initStd, tied);
  const b = ctx.at('/cls/predictions/decoder');
  const bias = ctx.param('cls.predictions.bias', [cfg.vocabSize], ctx.biasInit());
  return b.op('Add', [b.op('MatMul', [normed, w]), bias], {}, { outputs: [output] });
}

/** word + token_type + position embeddings, then LayerNorm. */
export function bertEmbeddings(ctx: ExportContext, cfg: ResolvedBertConfig, inputIds: string, tokenTypes: string): string {
  const scope = '/bert/embeddings';
  const b = ctx.at(scope);
  const H = cfg.hiddenSize;
  let positions: string;
  if (cfg.positionIds === 'slice') {
    // HF's registered buffer position_ids [1, max_positions], sliced to the sequence length.
    const buffer = constI64(b, Array.from({ length: cfg.maxPositions }, (_, i) => i), [1, cfg.maxPositions]);
    const seq = unsqueeze(b, dim(b, inputIds, 1), [0]);
    positions = b.op('Slice', [buffer, constI64(b, [0]), seq, constI64(b, [1]), constI64(b, [1])]);
  } else {
    positions = rangePositionIds(ctx, scope, inputIds);
  }
  const word = ctx.param('bert.embeddings.word_embeddings.weight', [cfg.vocabSize, H], { normal: ctx.initStd });
  const pos = ctx.param('bert.embeddings.position_embeddings.weight', [cfg.maxPositions, H], { normal: ctx.initStd });
  const type = ctx.param('bert.embeddings.token_type_embeddings.weight', [cfg.typeVocabSize, H], { normal: ctx.initStd });
  const w = ctx.at(`${scope}/word_embeddings`).op('Gather', [word, inputIds]);
  const t = ctx.at(`${scope}/token_type_embeddings`).op('Gather', [type, tokenTypes]);
  const sum = b.op('Add', [w, t]);
  const p = ctx.at(`${scope}/position_embeddings`).op('Gather', [pos, positions]);
  const emb = b.op('Add', [sum, p]);
  return layerNorm(ctx, cfg.layerNorm, `${scope}/LayerNorm`, 'bert.embeddings.LayerNorm', emb, H, cfg.layerNormEps);
}

/** BertSelfAttention: query/key/value, scaled scores + additive mask, Softmax, context. */
export function bertSelfAttention(ctx: ExportContext, cfg: ResolvedBertConfig, layer: number, x: string, extendedMask: string): string {
  return encoderSelfAttention(ctx, `/bert/encoder/layer.${layer}/attention/self`, `bert.encoder.layer.${layer}.attention.self`, x, cfg.hiddenSize, cfg.numHeads, extendedMask);
}

/** One encoder layer: attention + output dense + residual + LN, intermediate GELU, output + LN. */
export function bertLayer(ctx: ExportContext, cfg: ResolvedBertConfig, layer: number, x: string, extendedMask: string): string {
  const scope = `/bert/encoder/layer.${layer}`;
  const module = `bert.encoder.layer.${layer}`;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const context = bertSelfAttention(ctx, cfg, layer, x, extendedMask);
  const attnOut = linear(ctx, `${scope}/attention/output/dense`, `${module}.attention.output.dense`, context, H, H);
  const attnRes = ctx.at(`${scope}/attention/output`).op('Add', [attnOut, x]);
  const attn = layerNorm(ctx, cfg.layerNorm, `${scope}/attention/output/LayerNorm`, `${module}.attention.output.LayerNorm`, attnRes, H, cfg.layerNormEps);
  const inter = linear(ctx, `${scope}/intermediate/dense`, `${module}.intermediate.dense`, attn, H, I);
  const act = gelu(ctx, cfg.gelu, `${scope}/intermediate/intermediate_act_fn`, inter);
  const out = linear(ctx, `${scope}/output/dense`, `${module}.output.dense`, act, I, H);
  const res = ctx.at(`${scope}/output`).op('Add', [out, attn]);
  return layerNorm(ctx, cfg.layerNorm, `${scope}/output/LayerNorm`, `${module}.output.LayerNorm`, res, H, cfg.layerNormEps);
}

/** BertPooler: hidden state of token 0, dense, Tanh. */
export function bertPooler(ctx: ExportContext, cfg: ResolvedBertConfig, h: string): string {
  const first = firstToken(ctx, cfg.firstToken, '/bert/pooler', h);
  const dense = headLinear(ctx, cfg.head, '/bert/pooler/dense', 'bert.pooler.dense', first, cfg.hiddenSize, cfg.hiddenSize);
  return ctx.at('/bert/pooler/activation').op('Tanh', [dense]);
}

/** `h[:, 0]` as Gather(index 0, axis 1) or Slice(0:1, axis 1) + Squeeze. */
export function firstToken(ctx: ExportContext, style: 'gather' | 'slice', scope: string, h: string): string {
  const b = ctx.at(scope);
  if (style === 'gather') return b.op('Gather', [h, scalarI64(b, 0)], { axis: 1 });
  const sliced = b.op('Slice', [h, constI64(b, [0]), constI64(b, [1]), constI64(b, [1]), constI64(b, [1])]);
  return b.op('Squeeze', [sliced, constI64(b, [1])]);
}

/** bert-base-uncased sizes: hidden 768, 12 layers × 12 heads, intermediate 3072, vocab 30522, 512 positions (~440 MB). */
export function bertBaseConfig(overrides: Partial<BertConfig> = {}): BertConfig {
  return {
    vocabSize: 30522,
    hiddenSize: 768,
    numLayers: 12,
    numHeads: 12,
    intermediateSize: 3072,
    maxPositions: 512,
    numLabels: 2,
    opset: 14,
    seed: 1101,
    ...overrides,
  };
}

/** A bert-base-sized classifier (~440 MB of float32 parameters), built in seconds. */
export function buildBertBase(overrides: Partial<BertConfig> = {}): OnnxModel {
  return buildBert(bertBaseConfig(overrides));
}
