/**
 * Architecture detection from the graph structure's summary and the export's names: each
 * layout names its family, model-type words name the model type, and anything else is not
 * recognised (never a guess).
 */
import { describe, expect, it } from 'vitest';
import { detectArchitecture, detectFromStructure, refineWithStructure } from '../../src/adapter/architectures.ts';
import { isHeadName } from '../../src/adapter/heads.ts';
import type { StructureSummary } from '../../src/adapter/structure.ts';

const base: StructureSummary = {
  layers: 2,
  attention: 2,
  crossAttention: 0,
  mlp: 2,
  packedQkv: 0,
  separateQkv: 2,
  fusedOps: [],
  postNorm: 0,
  preNorm: 0,
  gatedMlp: 0,
  plainMlp: 2,
  rotary: false,
  learnedPositions: false,
  unscaled: 0,
};
const bert = { ...base, postNorm: 2, learnedPositions: true };
const gpt2 = { ...base, packedQkv: 2, separateQkv: 0, preNorm: 2, learnedPositions: true };
const llama = { ...base, preNorm: 2, gatedMlp: 2, plainMlp: 0, rotary: true };
const whisper = { ...base, layers: 4, attention: 4, separateQkv: 4, crossAttention: 2, mlp: 4, plainMlp: 4, preNorm: 4 };

describe('architecture from the graph structure', () => {
  it.each([
    ['BERT layout', bert, 'bert', 'bert'],
    ['BERT fused by ONNX Runtime', { ...bert, packedQkv: 2, separateQkv: 0, fusedOps: ['Attention (com.microsoft)'] } as StructureSummary, 'bert', 'bert'],
    ['GPT-2 layout', gpt2, 'gpt2', 'gpt2'],
    ['LLaMA layout', llama, 'llama', 'llama'],
    ['encoder-decoder layout', whisper, 'llama', 'encoder-decoder'],
  ] as Array<[string, StructureSummary, string, string]>)('%s', (_, summary, family, modelType) => {
    const d = detectFromStructure(summary, []);
    expect(d).toMatchObject({ architecture: { name: family }, modelType, source: 'graph-structure' });
    expect(d!.evidence).toMatch(/^graph structure: /);
  });

  it.each([
    ['pre-norm separate q/k/v with a plain MLP (ViT, GPT-Neo, OPT: their names differ)', { ...base, preNorm: 2 }],
    ['BERT layout without learned positions (DeBERTa)', { ...bert, learnedPositions: false }],
    ['packed q/k/v without learned positions (BLOOM, ALiBi)', { ...gpt2, learnedPositions: false }],
    ['packed q/k/v with rotary embeddings (GPT-NeoX, Falcon)', { ...gpt2, rotary: true }],
    ['gated MLP without rotary embeddings', { ...llama, rotary: false }],
    ['encoder-decoder with unscaled scores (T5)', { ...whisper, unscaled: 6 }],
    ['nothing recognised', { ...base, layers: 0, attention: 0, mlp: 0, separateQkv: 0, plainMlp: 0 }],
  ] as Array<[string, StructureSummary]>)('not recognised: %s', (_, summary) => {
    expect(detectFromStructure(summary, [])).toBeUndefined();
  });

  it("the export's names name the model type within the family", () => {
    const d = detectFromStructure(bert, ['roberta.embeddings.word_embeddings.weight', 'roberta.pooler.dense.weight', 'MatMul_3']);
    expect(d).toMatchObject({ modelType: 'roberta', named: true });
    expect(d!.evidence).toMatch(/name the model type 'roberta' \(e\.g\. 'roberta\.embeddings\.word_embeddings\.weight'\)/);
    expect(detectFromStructure(bert, ['MatMul_3'])).toMatchObject({ modelType: 'bert', named: false });
  });

  it("names of another family's model with the same layout leave it undecided (DistilBERT is not BERT)", () => {
    expect(detectFromStructure(bert, ['distilbert.embeddings.word_embeddings.weight', 'distilbert.transformer.layer.0.attention.q_lin.bias'])).toBeUndefined();
  });
});

describe('architecture from module names', () => {
  it('q_proj/v_proj layers with cross-attention are an encoder-decoder, not LLaMA', () => {
    const d = detectArchitecture(['self_attn.q_proj', 'self_attn.v_proj', 'encoder_attn.q_proj', 'fc1']);
    expect(d).toMatchObject({ modelType: 'encoder-decoder', named: true });
  });

  it('the structure tells the model type when the names do not', () => {
    const d = detectArchitecture(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj'])!;
    expect(d).toMatchObject({ modelType: 'llama', named: false });
    expect(d.evidence).toMatch(/does not name the model type/);
    expect(refineWithStructure(d, whisper)).toMatchObject({ modelType: 'encoder-decoder', named: true });
    expect(refineWithStructure(d, llama)).toMatchObject({ modelType: 'llama', named: true });
    expect(refineWithStructure(d, { ...base, preNorm: 2 })).toBe(d);
  });
});

describe('head names', () => {
  it.each([
    ['lm_head', true],
    ['classifier', true],
    ['classifier.out_proj', true],
    ['qa_outputs', true],
    ['cls.predictions.transform.dense', true],
    ['cls.seq_relationship', true],
    ['score', true],
    ['proj_out', true],
    ['bert.pooler.dense', false],
    ['bert.encoder.layer.0.attention.self.query', false],
    ['model.layers.0.mlp.down_proj', false],
  ])('%s -> %s', (module, head) => {
    expect(isHeadName(module)).toBe(head);
  });
});
