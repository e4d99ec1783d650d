/**
 * Full-parameter training of a plain (not adapted) model through the project's own autodiff:
 * every float initializer becomes a trainable parameter of `buildGradModel`, and the same fused
 * forward + backward + AdamW training graph that `peanut-onnx train` runs does one step per
 * `InferenceSession.run`. Used by `tools/make-graphs.ts` to pre-train the shipped demo model.
 *
 * Single-threaded CPU sessions and a seeded data order make a run reproducible on one machine
 * and onnxruntime version.
 */
import type { Feeds, Session, TensorLike } from '../../src/runtime/session.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { buildGradModel } from '../../src/train/grad-model.ts';
import { isFloatType } from '../../src/onnx/dtype.ts';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { floatTensor, numElements, tensorDims, tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { momentName } from '../../src/formats/checkpoint-keys.ts';
import { adamWScalarFeeds } from '../../src/train/adamw.ts';
import { learningRate, type ScheduleName } from '../../src/train/schedule.ts';
import { buildTrainingGraphs, EVAL_OUTPUTS, TRAIN_OUTPUTS } from '../../src/train/training-graph.ts';
import { Random } from '../../src/util/random.ts';
import { collate, type Example } from './synthetic.ts';

export interface PretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  schedule: ScheduleName;
  weightDecay: number;
  gradClip: number | null;
  /** Seed of the data order. */
  seed: number;
  /** Evaluate every N steps (and at the end). */
  evalEvery: number;
  onLog?: (line: PretrainLog) => void;
}

export interface PretrainLog {
  step: number;
  loss?: number;
  lr?: number;
  eval_loss?: number;
  eval_accuracy?: number;
  seconds: number;
}

export interface PretrainResult {
  /** The model with trained weights (same graph, new initializer values). */
  model: OnnxModel;
  /** Trainable parameters (float initializers) and their element count. */
  params: string[];
  numParams: number;
  /** Train/eval history (also passed to `onLog`). */
  log: PretrainLog[];
  final: { eval_loss: number; eval_accuracy: number; train_loss: number };
}

/** Names of the trainable parameters of a plain model: every float initializer with more than one element. */
export function trainableInitializers(model: OnnxModel): string[] {
  return graphOf(model)
    .initializer.filter((t) => isFloatType(t.dataType) && numElements(tensorDims(t)) > 1)
    .map((t) => t.name);
}

function batchFeeds(examples: readonly Example[]): Feeds {
  const b = collate(examples);
  return {
    input_ids: new ort.Tensor('int64', b.input_ids, b.dims),
    attention_mask: new ort.Tensor('int64', b.attention_mask, b.dims),
    token_type_ids: new ort.Tensor('int64', b.token_type_ids, b.dims),
    labels: new ort.Tensor('int64', b.labels, [b.dims[0]]),
  };
}

/** Mean loss and accuracy of the eval graph over `data` (θ fed as inputs). */
async function evaluateFull(session: Session, data: readonly Example[], params: Map<string, TensorLike>, batchSize: number): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < data.length; i += batchSize) {
    const chunk = data.slice(i, i + batchSize);
    const out = await session.run({ ...Object.fromEntries(params), ...batchFeeds(chunk) });
    lossSum += (out[EVAL_OUTPUTS.loss]!.data as Float32Array)[0]! * chunk.length;
    const logits = out[EVAL_OUTPUTS.prediction]!.data as Float32Array;
    chunk.forEach((e, b) => {
      if ((logits[2 * b + 1]! > logits[2 * b]! ? 1 : 0) === e.labels) correct++;
    });
  }
  return { loss: lossSum / data.length, accuracy: correct / data.length };
}

/**
 * Trains every float initializer of a two-label sequence classifier.
 *
 * @param model - a plain model (inputs input_ids/attention_mask/token_type_ids, output logits [B, 2])
 * @param train - training examples; `evalSet` - held-out examples
 */
export async function pretrain(model: OnnxModel, train: readonly Example[], evalSet: readonly Example[], o: PretrainOptions): Promise<PretrainResult> {
  const started = performance.now();
  const names = trainableInitializers(model);
  const inits = new Map(graphOf(model).initializer.map((t) => [t.name, t]));
  const grad = await buildGradModel(nodeRuntime, model, { task: 'seq-cls', params: names, batch: batchFeeds(train.slice(0, o.batchSize)) });
  const graphs = buildTrainingGraphs(grad);
  const sessionOpts = { ep: 'cpu' as const, threads: 1, memPattern: false };
  const trainSession = (await createSession(encodeModel(graphs.train), sessionOpts)).session;
  const evalSession = (await createSession(encodeModel(graphs.eval), sessionOpts)).session;

  const shapes = new Map(names.map((n) => [n, tensorDims(inits.get(n)!)]));
  let theta: Map<string, Float32Array> = new Map(names.map((n) => [n, tensorToFloat32(inits.get(n)!, model.baseDir).slice()]));
  let m: Map<string, Float32Array> = new Map(names.map((n) => [n, new Float32Array(theta.get(n)!.length)]));
  let v: Map<string, Float32Array> = new Map(names.map((n) => [n, new Float32Array(theta.get(n)!.length)]));
  const tensors = () => new Map(names.map((n) => [n, new ort.Tensor('float32', theta.get(n)!, shapes.get(n)!)]));
  const h = graphs.hyperInputs;
  const optimizerFeeds = (step: number, lr: number) =>
    Object.fromEntries(
      Object.entries(adamWScalarFeeds(h, { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay, maxGradNorm: o.gradClip ?? null }, step)).map(([n, x]) => [n, new ort.Tensor('float32', x, [])]),
    );
  const log: PretrainLog[] = [];
  const emit = (line: Omit<PretrainLog, 'seconds'>) => {
    const full = { ...line, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) };
    log.push(full);
    o.onLog?.(full);
  };

  const rng = new Random(o.seed);
  let order: number[] = [];
  let lossAvg = 0;
  let final = { eval_loss: NaN, eval_accuracy: NaN, train_loss: NaN };
  try {
    for (let step = 1; step <= o.steps; step++) {
      if (order.length < o.batchSize) order = [...order, ...rng.shuffle(train.map((_, i) => i))];
      const batch = order.splice(0, o.batchSize).map((i) => train[i]!);
      const lr = learningRate(step, { lr: o.lr, warmup: o.warmup, schedule: o.schedule, totalSteps: o.steps });
      const feeds: Feeds = { ...optimizerFeeds(step, lr), ...batchFeeds(batch) };
      for (const n of names) {
        const dims = shapes.get(n)!;
        feeds[n] = new ort.Tensor('float32', theta.get(n)!, dims);
        feeds[momentName('m', n)] = new ort.Tensor('float32', m.get(n)!, dims);
        feeds[momentName('v', n)] = new ort.Tensor('float32', v.get(n)!, dims);
      }
      const out = await trainSession.run(feeds);
      const loss = (out[TRAIN_OUTPUTS.loss]!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss)) throw new Error(`pre-training diverged at step ${step} (loss ${loss}); lower the learning rate`);
      theta = new Map(names.map((n) => [n, out[TRAIN_OUTPUTS.param(n)]!.data as Float32Array]));
      m = new Map(names.map((n) => [n, out[TRAIN_OUTPUTS.moment('m', n)]!.data as Float32Array]));
      v = new Map(names.map((n) => [n, out[TRAIN_OUTPUTS.moment('v', n)]!.data as Float32Array]));
      lossAvg = step === 1 ? loss : 0.98 * lossAvg + 0.02 * loss;
      if (step % o.evalEvery === 0 || step === o.steps) {
        const ev = await evaluateFull(evalSession, evalSet, tensors(), 256);
        emit({ step, loss: Number(lossAvg.toFixed(5)), lr, eval_loss: Number(ev.loss.toFixed(5)), eval_accuracy: Number(ev.accuracy.toFixed(4)) });
        final = { eval_loss: ev.loss, eval_accuracy: ev.accuracy, train_loss: lossAvg };
      }
    }
  } finally {
    await trainSession.release();
    await evalSession.release();
  }

  // The same graph with the trained values in place of the initial ones.
  const src = graphOf(model);
  const initializer = src.initializer.map((t) => (theta.has(t.name) ? floatTensor(t.name, tensorDims(t), theta.get(t.name)!) : t));
  const proto = create(ModelProtoSchema, { ...model.proto, graph: create(GraphProtoSchema, { ...src, initializer }) });
  const numParams = names.reduce((s, n) => s + theta.get(n)!.length, 0);
  return { model: { proto, baseDir: model.baseDir }, params: names, numParams, log, final };
}
