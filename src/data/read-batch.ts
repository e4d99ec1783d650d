/**
 * One batch for a gradient model: the data inputs it declares plus its labels, read from a data
 * file through the shared example-set reader (safetensors or JSONL, padded and completed the way
 * the training data is), as onnxruntime feeds.
 */
import type { GradModel } from '../train/grad-model.ts';
import { feedInputs, type Feeds } from '../runtime/probe.ts';
import { valueInfoType } from '../onnx/graph.ts';
import { ort } from '../runtime/session.ts';
import { openExampleSet, type BatchTensor, type InputSpec } from './example-set.ts';
import type { TextTokenizer } from './tokenize.ts';

export interface ReadBatchOptions {
  task: string;
  /** Use only the first `limit` examples (default: all). */
  limit?: number;
  tokenizer?: TextTokenizer;
}

/** An ORT tensor from a collated batch tensor. */
export function ortFromBatch(t: BatchTensor): ort.Tensor {
  return new ort.Tensor(t.type, t.data, t.dims);
}

/** Reads the examples of `path` as one batch of feeds for `gm` (θ excluded). */
export function readBatch(path: string, gm: Pick<GradModel, 'model' | 'params' | 'labels'>, opts: ReadBatchOptions): Feeds {
  const params = new Set(gm.params);
  const inputs: InputSpec[] = feedInputs(gm.model.proto)
    .filter((v) => !params.has(v.name))
    .map((v) => ({ name: v.name, elemType: valueInfoType(v)?.elemType ?? 0 }));
  return readFeeds(path, inputs, gm.labels, opts);
}

/** Reads the examples of `path` as one batch of feeds for the given inputs (labels among them). */
export function readFeeds(path: string, inputs: readonly InputSpec[], labels: string, opts: ReadBatchOptions): Feeds {
  const set = openExampleSet(path, opts.tokenizer ? { tokenizer: opts.tokenizer } : {});
  const n = Math.min(set.size, opts.limit ?? set.size);
  const batch = set.batch(
    Array.from({ length: n }, (_, i) => i),
    { inputs, labels, task: opts.task },
  );
  const feeds: Feeds = {};
  for (const [k, t] of batch) feeds[k] = ortFromBatch(t);
  return feeds;
}
