/**
 * Evaluation over a whole data set with the eval graph: the loss averaged over what the loss
 * counts (examples, or label tokens for causal LM), accuracy for classification tasks, perplexity
 * for causal LM.
 */
import type { Session } from '../runtime/session.ts';
import type { Feeds } from '../runtime/tensors.ts';
import { lossWeight, type CollateSpec, type ExampleSet } from '../data/example-set.ts';
import { EVAL_OUTPUTS } from './training-graph.ts';

export interface EvalMetrics {
  eval_loss: number;
  eval_accuracy?: number;
  eval_perplexity?: number;
  eval_examples: number;
}

const CLASSIFICATION = new Set(['seq-cls', 'image-cls']);

/**
 * Runs the eval session over every example of `data` in order.
 *
 * @param params - θ feeds (name → tensor), shared by every batch.
 */
export async function evaluate(
  session: Session,
  data: ExampleSet,
  spec: CollateSpec,
  params: Feeds,
  batchSize: number,
): Promise<EvalMetrics> {
  let lossSum = 0;
  let weightSum = 0;
  let correct = 0;
  let seen = 0;
  for (let start = 0; start < data.size; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, data.size - start) }, (_, i) => start + i);
    const batch = data.batch(indices, spec);
    const feeds: Feeds = { ...params, ...Object.fromEntries(batch) };
    const out = await session.run(feeds);
    const loss = Number((out[EVAL_OUTPUTS.loss]!.data as Float32Array)[0]);
    const w = lossWeight(batch, spec);
    if (w > 0) {
      lossSum += loss * w;
      weightSum += w;
    }
    if (CLASSIFICATION.has(spec.task)) {
      const pred = out[EVAL_OUTPUTS.prediction]!;
      const labels = batch.get(spec.labels)!;
      const B = indices.length;
      const C = pred.dims[pred.dims.length - 1] ?? 1;
      const logits = pred.data as Float32Array;
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (logits[b * C + c]! > logits[b * C + best]!) best = c;
        if (best === Number(labels.data[b])) correct++;
      }
    }
    seen += indices.length;
  }
  const evalLoss = weightSum > 0 ? lossSum / weightSum : NaN;
  const metrics: EvalMetrics = { eval_loss: evalLoss, eval_examples: seen };
  if (CLASSIFICATION.has(spec.task)) metrics.eval_accuracy = seen ? correct / seen : NaN;
  if (spec.task === 'causal-lm') metrics.eval_perplexity = Math.exp(evalLoss);
  return metrics;
}
