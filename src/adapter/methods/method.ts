/**
 * The adapter-method interface. Injection, merge, state files and the metadata entry are written
 * once against it; a method only declares its parameters and how ΔW is computed, both as ONNX
 * nodes (for the adapted model) and in plain float32 JS (for merge).
 *
 * Layouts: `'io'` is `[in, out]` (MatMul, Gemm transB=0); `'oi'` is `[out, in]` (Gemm transB=1).
 * `emitDelta` returns ΔW in the layout of the weight it was given; `computeDelta` works in `'io'`.
 */
import type { GraphBuilder } from '../../onnx/builder.ts';
import type { MethodConfig } from '../config.ts';

export type Layout = 'io' | 'oi';

/** How a parameter starts out (PEFT `init_weights=True`). */
export type ParamInit = 'kaiming_uniform' | 'zeros';

export interface ParamSpec {
  /** Key suffix after the module path, e.g. `peanut_A.weight`. */
  suffix: string;
  /** PEFT shape (an `nn.Linear.weight`: `[out_features, in_features]`). */
  shape: [number, number];
  init: ParamInit;
}

export interface LayerShape {
  in: number;
  out: number;
}

export interface AdapterMethod<C extends MethodConfig = MethodConfig> {
  readonly name: C['method'];
  /** Parameter suffix that marks an adapted model (e.g. `peanut_A.weight`). */
  readonly marker: string;
  /** The parameters one layer gets, in a fixed order. */
  paramSpecs(config: C, layer: LayerShape): ParamSpec[];
  /**
   * Emits the nodes computing ΔW.
   *
   * @param b - builder positioned before the layer
   * @param w0 - float32 value of the frozen weight, in `layout`
   * @param params - parameter value names by suffix
   * @returns the float32 ΔW value name, in `layout`
   */
  emitDelta(b: GraphBuilder, config: C, w0: string, params: ReadonlyMap<string, string>, layout: Layout, layer: LayerShape): string;
  /**
   * ΔW in float32 JS, `[in, out]`.
   *
   * @param w0 - the frozen weight, `[in, out]` row-major
   * @param params - parameter values by suffix (PEFT shapes, row-major)
   * @param into - if given, ΔW is added into it (`[in, out]`, may be `w0` itself, read before
   *   it is written) and it is returned: the same float32 values as `addInPlace(into, ΔW)`,
   *   without a ΔW array
   */
  computeDelta(config: C, w0: Float32Array, params: ReadonlyMap<string, Float32Array>, layer: LayerShape, into?: Float32Array): Float32Array;
}

/** Trainable parameters a method adds to one layer. */
export function paramCount(specs: readonly ParamSpec[]): number {
  return specs.reduce((s, p) => s + p.shape[0] * p.shape[1], 0);
}
