/** What a batch is collated for and what its examples are checked against (example-set.ts, check-examples.ts). */
import type { InputSpec, ModelBounds } from './model-inputs.ts';
import type { LabelInput } from './tasks.ts';

export interface CollateSpec {
  /** Every data input of the graph (the label inputs included). */
  inputs: readonly InputSpec[];
  /** The label inputs of the loss and the data fields filling them. */
  labels: readonly LabelInput[];
  task: string;
  /** Truncate sequences to this many tokens. */
  maxLength?: number;
}

/** What examples are checked against before training. */
export interface CheckSpec extends CollateSpec {
  bounds: ModelBounds;
}
