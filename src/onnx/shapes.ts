/**
 * Shapes of a graph's values as shape probing measures them (src/runtime/probe.ts) and gradient
 * rules read them (src/autodiff/rule.ts).
 */

/** Known static shape of a value: a number per axis, or null for a run-time (dynamic) axis. */
export type StaticShape = ReadonlyArray<number | null>;

/** Element type and known dims of one value (`null` = varies at run time). */
export interface ValueShape {
  readonly dtype: number;
  readonly shape: StaticShape;
}

/** Probed shapes of every value of a graph: inputs, initializers and node outputs. */
export type ShapeTable = Map<string, ValueShape>;
