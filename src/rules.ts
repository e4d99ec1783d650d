/**
 * `peanut-onnx/rules`: what authors of gradient rules need, for ops the built-in registry does
 * not cover (see docs/autodiff.md). A rule is a `GradRule` config; `createRegistry` builds a
 * registry from the built-in `RULES` plus your own (a duplicate throws) and `buildGradModel` /
 * `buildGradients` take it as `registry`.
 *
 * @packageDocumentation
 */
export type { GradRule, GradContext, NoGradient, StaticShape } from './autodiff/rule.ts';
export { createRegistry, defaultRegistry, NO_GRADIENT, type GradRegistry } from './autodiff/registry.ts';
export { RULES } from './autodiff/rules/index.ts';
export { buildGradients, type BuildGradientsOptions, type GradientResult } from './autodiff/gradient.ts';
export { GraphBuilder } from './onnx/builder.ts';
export { Graph, makeValueInfo } from './onnx/graph.ts';
export { DataType } from './onnx/dtype.ts';
export * as ops from './onnx/ops.ts';
export * as helpers from './autodiff/rules/shared/helpers.ts';
export { probeShapes, type ProbeOptions } from './runtime/probe.ts';
export type { ShapeTable, ValueShape } from './onnx/shapes.ts';
