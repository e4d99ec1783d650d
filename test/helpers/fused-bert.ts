/**
 * A BERT classifier in the form ONNX Runtime's transformer optimizer gives a BERT export:
 * EmbedLayerNormalization, then per layer a com.microsoft Attention holding the packed q/k/v
 * weight [H, 3H], the output MatMul, SkipLayerNormalization, MatMul → BiasGelu → MatMul,
 * SkipLayerNormalization; the pooler and classifier as Gemm. Node names carry no module path
 * (`Attention_0`, `MatMul_3`); the pooler and classifier weights keep their parameter names, as
 * the optimizer leaves them.
 */
import { float } from '../../src/onnx/attributes.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema } from '../../src/onnx/proto.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import { Random } from '../../src/util/random.ts';

export interface FusedBertConfig {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  positions: number;
  labels: number;
  seed: number;
}

export function buildFusedBert(cfg: FusedBertConfig): OnnxModel {
  const gp = create(GraphProtoSchema, { name: 'fused_bert' });
  const g = new Graph(gp);
  const rng = new Random(cfg.seed);
  let count = 0;
  const w = (dims: number[], scale = 0.1, name = `${1000 + count++}`) => {
    const n = dims.reduce((a, b) => a * b, 1);
    g.addInitializer(floatTensor(name, dims, rng.fillUniform(new Float32Array(n), -scale, scale)));
    return name;
  };
  const ones = (n: number) => {
    const name = `${1000 + count++}`;
    g.addInitializer(floatTensor(name, [n], new Float32Array(n).fill(1)));
    return name;
  };
  for (const name of ['input_ids', 'attention_mask', 'token_type_ids']) {
    gp.input.push(makeValueInfo(name, DT.INT64, ['batch_size', 'sequence_length']));
    g.reserve(name);
  }
  const b = new GraphBuilder(g, '');
  const ms = { domain: 'com.microsoft' };
  const H = cfg.hidden;
  const int32 = (x: string) => b.op('Cast', [x], { to: DT.INT32 });
  const [ids, types, mask] = [int32('input_ids'), int32('token_type_ids'), int32('attention_mask')];
  let [x, maskIndex] = b.opN(
    'EmbedLayerNormalization',
    [ids, types, w([cfg.vocab, H]), w([cfg.positions, H]), w([2, H]), ones(H), w([H], 0.02), mask],
    { epsilon: float(1e-12) },
    { ...ms, outputs: 2, name: 'EmbedLayerNormalization_0' },
  ) as [string, string];
  for (let l = 0; l < cfg.layers; l++) {
    const a = b.op('Attention', [x, w([H, 3 * H]), w([3 * H], 0.02), maskIndex], { num_heads: cfg.heads }, { ...ms, name: `Attention_${l}` });
    const o = b.op('MatMul', [a, w([H, H])], {}, { name: `MatMul_${2 * l}` });
    const x1 = b.op('SkipLayerNormalization', [o, x, ones(H), w([H], 0.02), w([H], 0.02)], { epsilon: float(1e-12) }, { ...ms, name: `SkipLayerNorm_AddBias_${2 * l}` });
    const f = b.op('MatMul', [x1, w([H, cfg.intermediate])], {}, { name: `FullyConnect_MatMul_${2 * l}` });
    const act = b.op('BiasGelu', [f, w([cfg.intermediate], 0.02)], {}, { ...ms, name: `Gelu_AddBias_${l}` });
    const f2 = b.op('MatMul', [act, w([cfg.intermediate, H])], {}, { name: `FullyConnect_MatMul_${2 * l + 1}` });
    x = b.op('SkipLayerNormalization', [f2, x1, ones(H), w([H], 0.02), w([H], 0.02)], { epsilon: float(1e-12) }, { ...ms, name: `SkipLayerNorm_AddBias_${2 * l + 1}` });
  }
  const first = b.op('Gather', [x, b.constInt64([0], [])], { axis: 1 });
  const pooled = b.op('Tanh', [b.op('Gemm', [first, w([H, H], 0.1, 'bert.pooler.dense.weight'), w([H], 0.02, 'bert.pooler.dense.bias')], { transB: 1 })]);
  b.op('Gemm', [pooled, w([cfg.labels, H], 0.1, 'classifier.weight'), w([cfg.labels], 0.02, 'classifier.bias')], { transB: 1 }, { outputs: ['logits'] });
  gp.output.push(makeValueInfo('logits', DT.FLOAT, ['batch_size', cfg.labels]));
  // The optimizer's names are not scoped: `Attention_0`, not `/Attention_0`.
  for (const n of gp.node) n.name = n.name.replace(/^\//, '');
  const proto = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'test',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 14n }), create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n })],
    graph: gp,
  });
  return { proto, baseDir: process.cwd() };
}
