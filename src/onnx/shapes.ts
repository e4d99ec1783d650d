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
  /**
   * The dims each probe run measured, where some are dynamic: two dynamic dims that agree in
   * every run are taken to be the same run-time dim (each run gives each symbolic input dim its
   * own size).
   */
  readonly samples?: ReadonlyArray<readonly number[]>;
}

/** Probed shapes of every value of a graph: inputs, initializers and node outputs. */
export type ShapeTable = Map<string, ValueShape>;
