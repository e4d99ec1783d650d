/**
 * Evaluation over a whole data set with the eval graph: the loss averaged over what the loss
 * counts (examples, or label tokens for per-token tasks), and per task:
 *
 *  - `seq-cls`, `image-cls`: accuracy (argmax of the logits = label);
 *  - `token-cls`: token accuracy over the labels that are not −100;
 *  - `qa`: exact span accuracy: the share of examples whose start *and* end argmax equal the
 *    labelled positions (examples whose positions lie outside the sequence are not counted);
 *  - `causal-lm`, `masked-lm`: perplexity, exp(loss) over the counted (next / masked) tokens.
 */
import type { Session } from '../runtime/session.ts';
import type { Feeds } from '../runtime/tensors.ts';
import { lossWeight, type BatchTensor, type CollateSpec, type ExampleSet } from '../data/example-set.ts';
import { halfBitsToFloat } from '../onnx/dtype.ts';
import { IGNORE_INDEX } from '../data/tasks.ts';
import { EVAL_OUTPUTS, evalPrediction } from './training-graph.ts';

export interface EvalMetrics {
  eval_loss: number;
  eval_accuracy?: number;
  eval_perplexity?: number;
  eval_examples: number;
}

const CLASSIFICATION = new Set(['seq-cls', 'image-cls']);
const PERPLEXITY = new Set(['causal-lm', 'masked-lm']);

/** Logits as float32 (fp16 heads come back as raw 16-bit words). */
function floats(t: { type: string; data: unknown }): ArrayLike<number> {
  return t.type === 'float16' ? Float32Array.from(t.data as Uint16Array, halfBitsToFloat) : (t.data as Float32Array);
}

/** Index of the largest of `C` values starting at `at`. */
function argmax(x: ArrayLike<number>, at: number, C: number): number {
  let best = 0;
  for (let c = 1; c < C; c++) if (x[at + c]! > x[at + best]!) best = c;
  return best;
}

/** [correct, counted] of one batch for the task's accuracy. */
function accuracy(task: string, out: Record<string, { type: string; data: unknown; dims: readonly number[] }>, batch: Map<string, BatchTensor>, spec: CollateSpec): [number, number] {
  const label = (i: number) => batch.get(spec.labels[i]!.name)!;
  const pred = (i: number) => out[evalPrediction(i)]!;
  let correct = 0;
  let counted = 0;
  if (CLASSIFICATION.has(task) || task === 'token-cls') {
    const p = pred(0);
    const C = Number(p.dims.at(-1) ?? 1);
    const logits = floats(p);
    const y = label(0).data;
    for (let i = 0; i < y.length; i++) {
      const v = Number(y[i]);
      if (v === IGNORE_INDEX) continue;
      counted++;
      if (argmax(logits, i * C, C) === v) correct++;
    }
  } else if (task === 'qa') {
    const [s, e] = [pred(0), pred(1)];
    const T = Number(s.dims[1] ?? 1);
    const [sl, el] = [floats(s), floats(e)];
    const [ys, ye] = [label(0).data, label(1).data];
    for (let b = 0; b < ys.length; b++) {
      const [a, z] = [Number(ys[b]), Number(ye[b])];
      if (a < 0 || a >= T || z < 0 || z >= T) continue;
      counted++;
      if (argmax(sl, b * T, T) === a && argmax(el, b * T, T) === z) correct++;
    }
  }
  return [correct, counted];
}

/**
 * Runs the eval session over every example of `data` in order.
 *
 * @param params - θ feeds (name → tensor), shared by every batch.
 */
export async function evaluate(session: Session, data: ExampleSet, spec: CollateSpec, params: Feeds, batchSize: number): Promise<EvalMetrics> {
  let lossSum = 0;
  let weightSum = 0;
  let correct = 0;
  let counted = 0;
  let seen = 0;
  const withAccuracy = CLASSIFICATION.has(spec.task) || spec.task === 'token-cls' || spec.task === 'qa';
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
    if (withAccuracy) {
      const [c, n] = accuracy(spec.task, out, batch, spec);
      correct += c;
      counted += n;
    }
    seen += indices.length;
  }
  const evalLoss = weightSum > 0 ? lossSum / weightSum : NaN;
  const metrics: EvalMetrics = { eval_loss: evalLoss, eval_examples: seen };
  if (withAccuracy) metrics.eval_accuracy = counted ? correct / counted : NaN;
  if (PERPLEXITY.has(spec.task)) metrics.eval_perplexity = Math.exp(evalLoss);
  return metrics;
}
