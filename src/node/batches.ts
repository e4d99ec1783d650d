/** Examples of a data file as session feeds for a model: batches in file order, padded as in training. */
import type { OnnxModel } from '../onnx/model.ts';
import type { LabelInput } from '../data/tasks.ts';
import { batchInputs } from '../data/batch-inputs.ts';
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
