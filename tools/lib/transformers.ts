/**
 * Generators of transformer ONNX models in the layout of Hugging Face optimum / torch.onnx
 * exports (torch-style node scopes, [in, out] MatMul weights `onnx::MatMul_<n>`, biases by module
 * name, `batch_size`/`sequence_length` dynamic axes, output `logits`). Every model is random but
 * deterministic: the same config and seed give identical bytes, and each parameter's values depend
 * only on the seed and its module name, so export variants (opset, LayerNorm or GELU form, Gemm or
 * MatMul heads) of one seed compute the same function.
 *
 * Used by tests, benchmarks and `tools/make-graphs.ts`; built with the project's GraphBuilder.
 */
export { buildBert, buildBertBase, bertBaseConfig, type BertConfig } from './bert.ts';
export { buildLlama, type LlamaConfig } from './llama.ts';
export { buildGpt2, type Gpt2Config } from './gpt2.ts';
export { buildVit, type VitConfig } from './vit.ts';
export { irVersionFor, FLOAT32_MIN, type CommonConfig, type Opset } from './export-context.ts';
export type { GeluStyle, LayerNormStyle } from './blocks.ts';
