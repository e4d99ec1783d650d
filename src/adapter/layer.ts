/** What the adapter knows of a linear layer it targets. */

export type LinearOp = 'MatMul' | 'Gemm';

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
  /** Name of the stored weight value (initializer, or the output of a Constant node). */
  weight: string;
  /** Which node input the weight is (always 1: MatMul B / Gemm B). */
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
  /** Gemm transB=1. */
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
}
