/**
 * The operators that hold a linear layer's weight, and how they hold it: which input is the
 * weight, which input carries the activations, and whether a 2-D weight read directly is stored
 * `[in, out]` (`io`) or `[out, in]` (`oi`). Discovery, the structural analysis and the adapter
 * record all read this table, so another weight-holding operator is one entry here; injection
 * and merge only ever use the node, the weight input and the layout.
 *
 * Quantized layers are listed too: they are linear layers of the model (the structure analysis
 * places them in their blocks), but their weights cannot be adapted, and `inspect` says why.
 */
import { attrInt } from '../onnx/attributes.ts';
import type { NodeProto } from '../onnx/proto.ts';

export interface LinearOpSpec {
  opType: string;
  /** `''` (ai.onnx) or `com.microsoft`. */
  domain: '' | 'com.microsoft';
  /** Input holding the weight. */
  weightInput: number;
  /** Input holding the activations the weight multiplies. */
  dataInput: number;
  /** Whether the op reads a 2-D weight transposed (its stored layout is then `[out, in]`). */
  transposesWeight(node: NodeProto): boolean;
  /** Why a node of this op cannot be adapted whatever its weight, if it cannot. */
  refuse?(node: NodeProto): string | undefined;
  /** Set for quantized layers: why their weights cannot be adapted. */
  quantized?: string;
}

const never = () => false;
const transB = (node: NodeProto) => attrInt(node, 'transB', 0) === 1;

const QUANTIZED = 'quantized weights cannot be adapted; adapt the float model, merge, then quantize';

/** Every weight-holding operator, by `domain:opType`. */
export const LINEAR_OPS: ReadonlyMap<string, LinearOpSpec> = new Map(
  (
    [
      { opType: 'MatMul', domain: '', weightInput: 1, dataInput: 0, transposesWeight: never },
      { opType: 'Gemm', domain: '', weightInput: 1, dataInput: 0, transposesWeight: transB },
      {
        // Y = alpha · A' · B' (ONNX Runtime's fusion of Transpose + MatMul + Mul).
        opType: 'FusedMatMul',
        domain: 'com.microsoft',
        weightInput: 1,
        dataInput: 0,
        transposesWeight: transB,
        refuse: (n) =>
          attrInt(n, 'transBatchB', 0) === 1 ? 'FusedMatMul transposes the batch axes of its weight (transBatchB=1), which a 2-D weight does not have; export without that fusion' : undefined,
      },
      // FastGelu(X · W + bias): the first MLP layer fused with its activation.
      { opType: 'GemmFastGelu', domain: 'com.microsoft', weightInput: 1, dataInput: 0, transposesWeight: never },
      // Fused self-attention: input 1 is the packed q/k/v weight [in, q + k + v].
      { opType: 'Attention', domain: 'com.microsoft', weightInput: 1, dataInput: 0, transposesWeight: never },
      { opType: 'MatMulNBits', domain: 'com.microsoft', weightInput: 1, dataInput: 0, transposesWeight: never, quantized: `4/8-bit block-quantized (MatMulNBits); ${QUANTIZED}` },
      { opType: 'MatMulInteger', domain: '', weightInput: 1, dataInput: 0, transposesWeight: never, quantized: `integer (MatMulInteger); ${QUANTIZED}` },
      { opType: 'QLinearMatMul', domain: '', weightInput: 3, dataInput: 0, transposesWeight: never, quantized: `quantized (QLinearMatMul); ${QUANTIZED}` },
      { opType: 'MatMulIntegerToFloat', domain: 'com.microsoft', weightInput: 1, dataInput: 0, transposesWeight: never, quantized: `integer (MatMulIntegerToFloat); ${QUANTIZED}` },
      { opType: 'DynamicQuantizeMatMul', domain: 'com.microsoft', weightInput: 1, dataInput: 0, transposesWeight: never, quantized: `integer (DynamicQuantizeMatMul); ${QUANTIZED}` },
      { opType: 'QGemm', domain: 'com.microsoft', weightInput: 3, dataInput: 0, transposesWeight: transB, quantized: `quantized (QGemm); ${QUANTIZED}` },
      { opType: 'QAttention', domain: 'com.microsoft', weightInput: 1, dataInput: 0, transposesWeight: never, quantized: `integer (QAttention); ${QUANTIZED}` },
    ] satisfies LinearOpSpec[]
  ).map((s) => [`${s.domain}:${s.opType}`, s]),
);

/** The spec of a weight-holding node, if it is one. */
export function linearOpOf(node: NodeProto): LinearOpSpec | undefined {
  const domain = node.domain === 'ai.onnx' ? '' : node.domain;
  return LINEAR_OPS.get(`${domain}:${node.opType}`);
}

/** `Attention (com.microsoft)` or `MatMul`: how messages name a node's op. */
export function opLabel(node: { opType: string; domain?: string }): string {
  return node.domain && node.domain !== 'ai.onnx' ? `${node.opType} (${node.domain})` : node.opType;
}
