/** Examples of a data file as session feeds for a model: batches in file order, padded as in training. */
import { DataType as DT } from '../onnx/dtype.ts';
import { valueInfoType } from '../onnx/graph.ts';
import type { OnnxModel } from '../onnx/model.ts';
import type { InputSpec } from '../data/example-set.ts';
import { feedInputs } from '../runtime/probe.ts';
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
  /** Name of the labels feed (default `labels`). */
  labels?: string;
}

/** The inputs a model's batches carry: its data inputs plus the labels. */
export function batchInputs(model: OnnxModel, opts: Pick<BatchOptions, 'task' | 'exclude' | 'labels'>): { inputs: InputSpec[]; labels: string } {
  const labels = opts.labels ?? 'labels';
  const inputs: InputSpec[] = feedInputs(model.proto)
    .filter((v) => !opts.exclude?.has(v.name))
    .map((v) => ({ name: v.name, elemType: valueInfoType(v)?.elemType ?? 0 }));
  if (!inputs.some((i) => i.name === labels)) inputs.push({ name: labels, elemType: opts.task === 'regression' ? DT.FLOAT : DT.INT64 });
  return { inputs, labels };
}

/**
 * The examples of `path` (.jsonl or .safetensors) as feeds for `model`'s inputs plus `labels`,
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
