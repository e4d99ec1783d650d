/**
 * The tasks a model can be trained for, and the label conventions they share with Hugging Face
 * (DESIGN.md section 3). The loss heads are in src/train/loss.ts, the collation of examples into
 * batches in example-set.ts, the metrics in src/train/evaluate.ts.
 *
 * | task        | labels (data fields)                  | head (graph outputs, default)     | HF model                      |
 * |-------------|---------------------------------------|-----------------------------------|-------------------------------|
 * | seq-cls     | `labels` / `label`: one class         | `logits [B, C]`                   | *ForSequenceClassification    |
 * | token-cls   | `labels`: one class per token, −100   | `logits [B, T, C]`                | *ForTokenClassification       |
 * | qa          | `start_positions`, `end_positions`    | `start_logits`, `end_logits [B,T]`| *ForQuestionAnswering         |
 * | masked-lm   | `labels`: token id per token, −100    | `logits [B, T, V]`                | *ForMaskedLM                  |
 * | causal-lm   | `labels` (default `input_ids`), −100  | `logits [B, T, V]`                | *ForCausalLM                  |
 * | image-cls   | `labels` / `label`: one class         | `logits [B, C]`                   | *ForImageClassification       |
 * | regression  | `labels` / `label`: floats            | `logits [B]` or `[B, k]`          | num_labels=1 / problem_type   |
 */

export const TASKS = ['seq-cls', 'token-cls', 'qa', 'masked-lm', 'causal-lm', 'image-cls', 'regression'] as const;
export type Task = (typeof TASKS)[number];

/** Label value the cross-entropy heads skip (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/**
 * What one label of a task is:
 *  - `class`: one class index per example;
 *  - `token-class`: one class (or vocabulary) index per token, −100 for tokens the loss skips;
 *  - `next-token`: like `token-class`, but the loss compares position t's prediction with label
 *    t + 1 (causal LM), and the labels default to `input_ids`;
 *  - `position`: one token position per example (extractive QA);
 *  - `float`: one or more real values per example.
 */
export type LabelKind = 'class' | 'token-class' | 'next-token' | 'position' | 'float';

export interface TaskInfo {
  /** The data fields holding the labels, one per label input of the loss (HF argument names). */
  labelFields: readonly string[];
  /** Other names a single label field may have in the data. */
  labelAliases: readonly string[];
  labelKind: LabelKind;
  /** The graph outputs the loss reads unless `--head` names others (HF output names). */
  defaultHeads: readonly string[];
}

const ONE_LABEL = { labelFields: ['labels'], labelAliases: ['label'], defaultHeads: ['logits'] } as const;

export const TASK_INFO: Readonly<Record<Task, TaskInfo>> = {
  'seq-cls': { ...ONE_LABEL, labelKind: 'class' },
  'image-cls': { ...ONE_LABEL, labelKind: 'class' },
  regression: { ...ONE_LABEL, labelKind: 'float' },
  'token-cls': { labelFields: ['labels'], labelAliases: [], labelKind: 'token-class', defaultHeads: ['logits'] },
  'masked-lm': { labelFields: ['labels'], labelAliases: [], labelKind: 'token-class', defaultHeads: ['logits'] },
  'causal-lm': { labelFields: ['labels'], labelAliases: [], labelKind: 'next-token', defaultHeads: ['logits'] },
  qa: { labelFields: ['start_positions', 'end_positions'], labelAliases: [], labelKind: 'position', defaultHeads: ['start_logits', 'end_logits'] },
};

/** Whether `name` is a task. */
export function isTask(name: string): name is Task {
  return (TASKS as readonly string[]).includes(name);
}

/** Whether the task's labels hold one value per token (padded with −100). */
export function perTokenLabels(task: string): boolean {
  const kind = isTask(task) ? TASK_INFO[task].labelKind : undefined;
  return kind === 'token-class' || kind === 'next-token';
}

/** A label input of a loss: the graph input and the data field that fills it. */
export interface LabelInput {
  /** Name of the graph input. */
  name: string;
  /** Name of the data field (`labels`, `start_positions`, …). */
  field: string;
}
