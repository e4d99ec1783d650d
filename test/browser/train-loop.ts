/**
 * The training loop of `peanut-onnx train` reduced to what moves tensors: feed the batch, θ, the
 * moments and the step's optimizer scalars, run the train graph once, carry θ and the moments to
 * the next step. It takes the `ort` object and runs the same in Node (onnxruntime-node or
 * onnxruntime-web) and in a page (onnxruntime-web), so one job can be compared across runtimes.
 * Browser-safe: no node: imports (the `Manifest` import is a type).
 */
import type * as OrtWeb from 'onnxruntime-web';
import { adamWScalarFeeds, type AdamWStepHyper } from '../../src/train/adamw.ts';
import type { Manifest } from '../../src/train/manifest.ts';
import type { BatchTensor } from '../../src/data/example-set.ts';

/** What the loop needs of an `ort` object (onnxruntime-node's and onnxruntime-web's both fit). */
export type OrtLike = Pick<typeof OrtWeb, 'Tensor'>;
// onnxruntime's own sessions and the library's `Session` both fit.
type Session = { run(feeds: Record<string, any>): Promise<Record<string, { data: unknown }>> };

export type BatchFeed = BatchTensor;

/** A training job as plain data (it crosses into a page with `pack`). */
export interface TrainJob {
  /** The train graph's input and output names, from the artifact manifest. */
  names: Manifest['train'];
  /** θ before the first step, by name, with its dims. */
  params: Array<{ name: string; dims: number[]; data: Float32Array }>;
  /** β1, β2, eps, weight decay, clipping: the same for every step. */
  hyper: Omit<AdamWStepHyper, 'lr'>;
  /** Every step's learning rate and batch, in order (step 1 first). */
  steps: Array<{ lr: number; batch: Record<string, BatchFeed> }>;
}

export interface TrainRun {
  /** Each step's loss (before its update) and gradient norm. */
  losses: number[];
  gradNorms: number[];
  /** θ after the last step. */
  params: Record<string, Float32Array>;
  /** Wall time of each step (feeds built, graph run, outputs read), in ms. */
  stepMs: number[];
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Wall time of the step (feeds built, graph run, outputs read), in ms. */
  ms: number;
}

/**
 * θ and the AdamW moments of one run of a job, advanced one optimizer step at a time. Past the
 * job's last step the batches and learning rates start over (the step count keeps growing), so
 * a benchmark can run as many steps as it wants.
 */
export class TrainLoop {
  #theta: Map<string, Float32Array<ArrayBufferLike>>;
  #m: Map<string, Float32Array<ArrayBufferLike>>;
  #v: Map<string, Float32Array<ArrayBufferLike>>;
  readonly #dims: Map<string, number[]>;
  /** Optimizer steps done. */
  done = 0;

  constructor(
    readonly ort: OrtLike,
    readonly session: Session,
    readonly job: TrainJob,
  ) {
    this.#theta = new Map(job.params.map((p) => [p.name, p.data]));
    this.#m = new Map(job.params.map((p) => [p.name, new Float32Array(p.data.length)]));
    this.#v = new Map(job.params.map((p) => [p.name, new Float32Array(p.data.length)]));
    this.#dims = new Map(job.params.map((p) => [p.name, p.dims]));
  }

  /** θ after the steps done so far. */
  get params(): Record<string, Float32Array> {
    return Object.fromEntries(this.#theta);
  }

  /** Runs the next optimizer step. */
  async step(): Promise<StepResult> {
    const started = performance.now();
    const { ort, job } = this;
    const { inputs, outputs } = job.names;
    const { lr, batch } = job.steps[this.done % job.steps.length]!;
    const feeds: Record<string, OrtWeb.Tensor> = {};
    for (const [name, x] of Object.entries(adamWScalarFeeds(inputs.hyperparameters, { ...job.hyper, lr }, this.done + 1))) feeds[name] = new ort.Tensor('float32', x, []);
    for (const [name, t] of Object.entries(batch)) feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    for (const [k, d] of this.#theta) {
      const dims = this.#dims.get(k)!;
      feeds[k] = new ort.Tensor('float32', d, dims);
      feeds[inputs.moments.m[k]!] = new ort.Tensor('float32', this.#m.get(k)!, dims);
      feeds[inputs.moments.v[k]!] = new ort.Tensor('float32', this.#v.get(k)!, dims);
    }
    const out = await this.session.run(feeds);
    const scalar = (name: string) => (out[name]!.data as Float32Array)[0]!;
    const next = (names: Record<string, string>) => new Map([...this.#theta.keys()].map((k) => [k, out[names[k]!]!.data as Float32Array]));
    [this.#theta, this.#m, this.#v] = [next(outputs.params), next(outputs.moments.m), next(outputs.moments.v)];
    this.done++;
    return { loss: scalar(outputs.loss), gradNorm: scalar(outputs.gradNorm), ms: performance.now() - started };
  }
}

/**
 * Runs the job's steps (or its first `steps`) through `session`, a session of the job's train
 * graph created with the caller's runtime and options.
 */
export async function runTrainSteps(ort: OrtLike, session: Session, job: TrainJob, steps = job.steps.length): Promise<TrainRun> {
  const loop = new TrainLoop(ort, session, job);
  const run: TrainRun = { losses: [], gradNorms: [], params: {}, stepMs: [] };
  for (let i = 0; i < steps; i++) {
    const r = await loop.step();
    run.losses.push(r.loss);
    run.gradNorms.push(r.gradNorm);
    run.stepMs.push(r.ms);
  }
  run.params = loop.params;
  return run;
}
