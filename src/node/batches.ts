/** Examples of a data file as session feeds for a model: batches in file order, padded as in training. */
import { DataType as DT } from '../onnx/dtype.ts';
import type { OnnxModel } from '../onnx/model.ts';
import type { InputSpec } from '../data/example-set.ts';
import { describeInputs } from '../data/model-inputs.ts';
import { isTask, TASK_INFO, type LabelInput } from '../data/tasks.ts';
import type { Feeds } from '../runtime/tensors.ts';
import { openExampleSet } from './data-files.ts';

export interface BatchOptions {
  task: string;
  /** Examples per batch (default: all in one). */
  batchSize?: number;
  /** Read at most this many examples. */
  limit?: number;
  /** Model inputs to leave out (e.g. θ of a gradient model). */
  exclude?: ReadonlySet<string>;
  /** The label inputs and their data fields (default: the task's fields, e.g. `labels`). */
  labels?: readonly LabelInput[];
}

/** The label inputs a task's loss adds to a model (named as their data fields). */
export function taskLabels(task: string): LabelInput[] {
  const fields = isTask(task) ? TASK_INFO[task].labelFields : ['labels'];
  return fields.map((f) => ({ name: f, field: f }));
}

/**
 * The inputs a model's batches carry: its data inputs (with their roles, so collation fills
 * masks, position ids and empty caches the data leaves out) plus the labels.
 */
export function batchInputs(model: OnnxModel, opts: Pick<BatchOptions, 'task' | 'exclude' | 'labels'>): { inputs: InputSpec[]; labels: LabelInput[] } {
  const labels = [...(opts.labels ?? taskLabels(opts.task))];
  const inputs = describeInputs(model.proto.graph!, opts.exclude);
  for (const l of labels) if (!inputs.some((i) => i.name === l.name)) inputs.push({ name: l.name, elemType: opts.task === 'regression' ? DT.FLOAT : DT.INT64, role: 'data' });
  return { inputs, labels };
}

/**
 * The examples of `path` (.jsonl or .safetensors) as feeds for `model`'s inputs plus the labels,
 * `batchSize` examples a batch, in file order.
 */
export function readBatches(path: string, model: OnnxModel, opts: BatchOptions): Feeds[] {
  const set = openExampleSet(path);
  const { inputs, labels } = batchInputs(model, opts);
  const n = Math.min(set.size, opts.limit ?? set.size);
  const size = opts.batchSize ?? n;
  const out: Feeds[] = [];
  for (let start = 0; start < n; start += size) {
    const indices = Array.from({ length: Math.min(size, n - start) }, (_, i) => start + i);
    out.push(Object.fromEntries(set.batch(indices, { inputs, labels, task: opts.task })));
  }
  return out;
}
