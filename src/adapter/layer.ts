/** What the adapter knows of a linear layer it targets. */

/** The weight-holding op of a layer: `MatMul`, `Gemm`, or a com.microsoft op (see linear-ops.ts). */
export type LinearOp = 'MatMul' | 'Gemm' | 'FusedMatMul' | 'GemmFastGelu' | 'Attention' | (string & {});

/**
 * A linear layer and its stored weight, by name: what discovery finds and what the adapter
 * record (adapter-meta.ts) keeps per target.
 */
export interface LayerRef {
  /** Module path (PEFT key prefix). */
  module: string;
  /** ONNX node name. */
  node: string;
  op: LinearOp;
  /** The op's domain when it is not ai.onnx (`com.microsoft`). */
  domain?: string;
  /** Name of the stored weight value (initializer, or the output of a Constant node). */
  weight: string;
  /** Which node input the weight is (1 for every op in linear-ops.ts that can be adapted). */
  weightInput: number;
  weightSource: 'initializer' | 'constant';
  /** Name of the Constant node when `weightSource` is 'constant'. */
  constantNode?: string;
  /** Name of the Transpose node between the stored weight and the layer, if any. */
  transposeNode?: string;
  /** First output of the layer node (identifies it even when node names are empty). */
  nodeOutput: string;
  /** The node (and its input index) that reads the stored weight: the layer, or its Transpose. */
  feedNode: string;
  /** First output of the feed node (identifies it even when node names are empty). */
  feedOutput: string;
  feedInput: number;
  /** The op reads the weight transposed (Gemm/FusedMatMul transB=1). */
  transB: boolean;
  /** Layout of the stored weight: `io` = `[in, out]`, `oi` = `[out, in]` (transB or a Transpose). */
  layout: 'io' | 'oi';
  /** ONNX element type of the weight. */
  elemType: number;
  /** Weight dtype name (`float32`, `float16`, `bfloat16`). */
  dtype: string;
  /** Input and output features. */
  in: number;
  out: number;
  /**
   * Set when the layer is a part of a packed weight: the output features `[start, end)` of the
   * stored `[in, out]` weight it owns (BERT's query, key and value inside a fused q/k/v weight).
   * `out` is `end - start`; the other parts of the weight are other layers or stay frozen.
   */
  columns?: [number, number];
}
