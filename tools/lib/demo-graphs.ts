/**
 * The small graphs shipped in `graphs/`, each with the exact config and seed it is built from, so
 * `tools/make-graphs.ts` can rebuild them byte for byte.
 */
import type { OnnxModel } from '../../src/onnx/io.ts';
import { buildBert, type BertConfig } from './bert.ts';

/** `graphs/bert-tiny.onnx`: a small random-initialised BERT sequence classifier (opset 17). */
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

export interface DemoGraph {
  file: string;
  description: string;
  build(): OnnxModel;
}

export const DEMO_GRAPHS: readonly DemoGraph[] = [
  {
    file: 'bert-tiny.onnx',
    description: 'BERT sequence classifier, random init (not yet pre-trained)',
    build: () => buildBert(BERT_TINY_CONFIG),
  },
];
