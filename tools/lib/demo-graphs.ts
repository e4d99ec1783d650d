/**
 * The small graphs and data shipped in `graphs/`, each with the exact config and seed it is built
 * from, so `tools/make-graphs.ts` can rebuild them.
 *
 *  - `bert-tiny.onnx`: `buildBert(BERT_TINY_CONFIG)` (random init), then pre-trained on the
 *    synthetic `majority` task (PRETRAIN) with full-parameter training through the project's own
 *    autodiff (`tools/lib/pretrain.ts`).
 *  - `demo/{train,eval}.jsonl`: the downstream `supermajority` task (DEMO_DATA), pre-tokenized.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import type { ScheduleName } from '../../src/train/schedule.ts';
import { buildBert, type BertConfig } from './bert.ts';
import type { TaskName, TaskOptions } from './synthetic.ts';

/** `graphs/bert-tiny.onnx` before pre-training: a small BERT sequence classifier (opset 17). */
export const BERT_TINY_CONFIG: BertConfig = {
  vocabSize: 128,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 128,
  maxPositions: 128,
  numLabels: 2,
  opset: 17,
  seed: 20261127,
};

export interface DataSpec {
  task: TaskName;
  examples: number;
  seed: number;
  options: TaskOptions;
}

/** Pre-training of `bert-tiny.onnx`: every float parameter, AdamW, one thread (reproducible). */
export const PRETRAIN = {
  train: { task: 'majority', examples: 20_000, seed: 1, options: { labelNoise: 0.1 } } satisfies DataSpec,
  eval: { task: 'majority', examples: 1_000, seed: 2, options: {} } satisfies DataSpec,
  steps: 1000,
  batchSize: 32,
  lr: 1e-3,
  warmup: 60,
  schedule: 'linear' as ScheduleName,
  weightDecay: 0.01,
  gradClip: 1.0,
  /** Seed of the data order. */
  seed: 0,
  evalEvery: 100,
};

/** The downstream task of `peanut-onnx demo`: `graphs/demo/{train,eval}.jsonl`. */
export const DEMO_DATA = {
  train: { task: 'supermajority', examples: 2_000, seed: 3, options: { pLo: 0.45, pHi: 0.95 } } satisfies DataSpec,
  eval: { task: 'supermajority', examples: 500, seed: 4, options: { pLo: 0.45, pHi: 0.95 } } satisfies DataSpec,
};

/** A second downstream task used by `tools/accuracy.ts` (generated on the fly, not shipped). */
export const KEYWORD_DATA = {
  train: { task: 'keyword', examples: 2_000, seed: 5, options: { pLo: 0.35, pHi: 0.65, maxKeywords: 3 } } satisfies DataSpec,
  eval: { task: 'keyword', examples: 500, seed: 6, options: { pLo: 0.35, pHi: 0.65, maxKeywords: 3 } } satisfies DataSpec,
};

/** The random-initialised starting point of `graphs/bert-tiny.onnx`. */
export function buildBertTinyInit(): OnnxModel {
  return buildBert(BERT_TINY_CONFIG);
}
