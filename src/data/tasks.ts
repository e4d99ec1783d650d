/**
 * The tasks a model can be trained for, and the label conventions they share with Hugging Face
 * (DESIGN.md section 3). The loss heads are in src/train/loss.ts; the collation of examples into
 * batches in example-set.ts.
 */

export const TASKS = ['seq-cls', 'causal-lm', 'image-cls', 'regression'] as const;
export type Task = (typeof TASKS)[number];

/** Label value the cross-entropy heads skip (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/** Whether `name` is a task. */
export function isTask(name: string): name is Task {
  return (TASKS as readonly string[]).includes(name);
}
