/**
 * The contract between the generic backward builder (gradient.ts) and the per-op gradient rules
 * (rules/<OpType>.ts). A rule sees one forward node and emits, through `ctx.b`, the nodes that
 * turn the gradients of its outputs into gradients of its inputs, in standard ONNX ops only.
 *
 * Vocabulary (after ONNX Runtime's gradient builders):
 *   I(i)  forward input name          O(i)  forward output name
 *   GO(i) gradient of output i, or undefined when no gradient reaches that output
 *   dY    gradient of output 0 (what a one-output, one-input op's rule needs)
 *   needsGrad(i)  whether input i needs a gradient (skip the work otherwise)
 */
import type { NodeProto } from '../onnx/proto.ts';
import type { GraphBuilder } from '../onnx/builder.ts';

import type { StaticShape } from '../onnx/shapes.ts';

export type { StaticShape };

export interface GradContext {
  readonly node: NodeProto;
  /** Emits backward nodes and constants (unique names under the node's scope). */
  readonly b: GraphBuilder;
  /** Opset of the default ONNX domain the graph imports. */
  readonly opset: number;
  I(i: number): string;
  O(i: number): string;
  /** Number of inputs the node actually has (trailing optional inputs may be absent). */
  readonly inputCount: number;
  GO(i: number): string | undefined;
  /**
   * The gradient of output 0. The tape calls a rule only when some output of its node received a
   * gradient and some input needs one, so for a one-output, one-input op this is always there and
   * the rule needs no check of its own (for other ops use GO(i) and needsGrad(i)).
   */
  readonly dY: string;
  needsGrad(i: number): boolean;
  /** Shape of a forward value, from shape probing; every value on the gradient path has one. */
  shape(name: string): StaticShape;
  rank(name: string): number;
  /**
   * Whether dim `i` of forward value `a` and dim `j` of `b` are the same at run time: equal
   * static dims, or dynamic dims that agreed in every probe run.
   */
  sameDim(a: string, i: number, b: string, j: number): boolean;
  /** ONNX element type of a forward value. */
  dtype(name: string): number;
  /**
   * Sums `grad` (shaped like the broadcast result) down to the shape of forward value `like`:
   * reduces the axes `like` was broadcast along and reshapes. A no-op when shapes agree.
   * `gradShape` is the shape of `grad`; by default the shape of the node's first output (right
   * for elementwise ops; pass it where the gradient has another shape, e.g. batched MatMul).
   */
  unbroadcast(grad: string, like: string, gradShape?: StaticShape): string;
  /** Value of a constant forward input (initializer or Constant node), if it is one. */
  constInts(name: string): number[] | undefined;
}

/**
 * A gradient rule for one op family. `grad` returns one entry per forward input: a gradient
 * value name, or undefined where the input needs none (or is not differentiable).
 */
export interface GradRule {
  readonly opType: string;
  /** ONNX domain ('' = ai.onnx). */
  readonly domain?: string;
  /**
   * Input indices that can carry a gradient. Others (shapes, axes, indices, conditions) are
   * stop-gradient edges. Default: every float input.
   */
  readonly differentiableInputs?: readonly number[];
  grad(ctx: GradContext): Array<string | undefined>;
}

/** Ops whose outputs never carry gradient (shape/index computations, comparisons). */
export interface NoGradient {
  readonly opType: string;
  readonly domain?: string;
  readonly noGradient: true;
}
