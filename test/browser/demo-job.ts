/**
 * The shipped model's training job (what `peanut-onnx demo` trains: PEANuT r 8 on query,value
 * of graphs/bert-tiny.onnx, the seq-cls task in graphs/demo/, batches of 16, lr 1e-2) as a
 * `TrainJob` plus the train graph's bytes, built in Node with the library. The batches, their
 * order and the learning rates are the ones `train()` feeds for the same options.
 */
import { DEMO_ASSETS, DEMO_DEFAULTS } from '../../src/cli/demo/run-demo.ts';
import { openExampleSet } from '../../src/node/data-files.ts';
import { BatchCursor } from '../../src/data/order.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { inject } from '../../src/adapter/inject.ts';
import { buildTrainingPlan } from '../../src/train/plan.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { learningRate } from '../../src/train/schedule.ts';
import type { TrainJob } from './train-loop.ts';

export interface DemoJob {
  job: TrainJob;
  /** The train graph (frozen weights inline: the shipped model has no external data). */
  trainGraph: Uint8Array;
  /** The `train()` options that run the same job. */
  trainOptions: { task: 'seq-cls'; data: string; steps: number; batchSize: number; lr: number; seed: number };
}

/**
 * Builds the job's first `steps` steps (a run of exactly `steps` steps: the linear schedule
 * decays to 0 over them).
 *
 * @param adaptedPath - where to write the adapted model, for runs of `train()` on the same job.
 */
export async function demoJob(steps: number, adaptedPath?: string): Promise<DemoJob> {
  const { model } = inject(loadModel(DEMO_ASSETS.model), { method: DEMO_DEFAULTS.method, r: DEMO_DEFAULTS.rank, targets: DEMO_DEFAULTS.targets, seed: DEMO_DEFAULTS.seed });
  if (adaptedPath) saveModel(model, adaptedPath);
  const built = await buildTrainingPlan(nodeRuntime, model, { task: 'seq-cls' });
  const { manifest } = built;
  const trainOptions = { task: 'seq-cls', data: DEMO_ASSETS.train, steps, batchSize: DEMO_DEFAULTS.batchSize, lr: DEMO_DEFAULTS.lr, seed: DEMO_DEFAULTS.seed } as const;
  const hyper = { ...manifest.hyperparameters, lr: trainOptions.lr, batchSize: trainOptions.batchSize, seed: trainOptions.seed, totalSteps: steps };
  const data = openExampleSet(trainOptions.data);
  const cursor = new BatchCursor({ size: data.size, batchSize: hyper.batchSize, seed: hyper.seed, shuffle: hyper.shuffle }, 0, 0);
  const spec = { inputs: manifest.train.inputs.data, labels: manifest.labels, task: manifest.task };
  const job: TrainJob = {
    names: manifest.train,
    params: manifest.train.inputs.params.map((p) => {
      const t = built.params.get(p.name)!;
      return { name: p.name, dims: [...t.shape], data: t.data as Float32Array };
    }),
    hyper: { beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay, maxGradNorm: hyper.gradClip },
    steps: Array.from({ length: steps }, (_, i) => ({
      lr: learningRate(i + 1, hyper),
      batch: Object.fromEntries(data.batch(cursor.next(), spec)),
    })),
  };
  return { job, trainGraph: encodeModel(built.graphs.train), trainOptions };
}
