/**
 * The training manifest: what a run needs to know about its graphs (input and output names,
 * θ, the task, the adapter, default hyper-parameters), written as `manifest.json` into an
 * artifact directory and built in memory when training straight from an adapted model.
 *
 *   train.onnx              forward + loss + backward + clipping + AdamW (one run = one step)
 *   eval.onnx               forward + loss + prediction
 *   checkpoint.safetensors  initial θ (PEFT keys), zero AdamW moments, step 0
 *   manifest.json           this
 */
import { PeanutError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { momentName } from '../formats/checkpoint-keys.ts';
import type { AdamWInputNames } from './adamw.ts';
import type { Hyperparameters } from './checkpoint.ts';
import type { ModelBounds } from '../data/model-inputs.ts';
import type { LabelInput } from '../data/tasks.ts';
import { EVAL_OUTPUTS, evalPrediction, TRAIN_OUTPUTS, type TensorSpec, type TrainingGraphs } from './training-graph.ts';

/**
 * Version 2: the optimizer's scalars are float32 inputs computed per step by the caller
 * (`adamWScalarFeeds`); version 1 graphs took float64 hyper-parameters and an int64 step.
 */
export const MANIFEST_FORMAT = 'peanut-onnx-artifacts/2';
export const ARTIFACT_FILES = { train: 'train.onnx', eval: 'eval.onnx', checkpoint: 'checkpoint.safetensors', manifest: 'manifest.json' } as const;

/** Defaults for a run (PyTorch AdamW defaults; schedule and learning rate as in HF's Trainer, lr raised for adapters). */
export const DEFAULT_HYPERPARAMETERS: Omit<Hyperparameters, 'totalSteps'> = {
  lr: 1e-3,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  gradClip: null,
  warmup: 0,
  schedule: 'linear',
  batchSize: 8,
  seed: 0,
  shuffle: true,
};

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  task: string;
  /** The adapter summary, from the adapted model's metadata. */
  peanut: unknown;
  /** The adapted model the artifacts were built from. */
  source: string | null;
  files: typeof ARTIFACT_FILES;
  train: {
    inputs: { data: TensorSpec[]; params: TensorSpec[]; moments: { m: Record<string, string>; v: Record<string, string> }; hyperparameters: AdamWInputNames };
    outputs: { loss: string; gradNorm: string; params: Record<string, string>; moments: { m: Record<string, string>; v: Record<string, string> } };
  };
  eval: { inputs: { data: TensorSpec[]; params: TensorSpec[] }; outputs: typeof EVAL_OUTPUTS & { predictions: string[] } };
  /** The label inputs of the loss and the data fields that fill them. */
  labels: LabelInput[];
  /** The model outputs the loss reads (`--head`), in the task's order. */
  heads: string[];
  /** What examples are checked against before the first step (vocabulary, positions, classes). */
  bounds: ModelBounds;
  /** θ left out of training because they do not reach the loss, and the warnings saying so. */
  dropped: string[];
  warnings: string[];
  hyperparameters: Omit<Hyperparameters, 'totalSteps'>;
  /** `peanut-onnx` and the ONNX Runtime package the graphs were built with. */
  versions: Record<string, string>;
}

/** The manifest describing `graphs`. */
export function makeManifest(graphs: TrainingGraphs, o: { task: string; peanut: unknown; source: string | null; runtime: { name: string; version: string } }): Manifest {
  const names = graphs.io.params.map((p) => p.name);
  const rec = (f: (p: string) => string) => Object.fromEntries(names.map((p) => [p, f(p)]));
  return {
    format: MANIFEST_FORMAT,
    task: o.task,
    peanut: o.peanut,
    source: o.source,
    files: ARTIFACT_FILES,
    train: {
      inputs: {
        data: graphs.io.data,
        params: graphs.io.params,
        moments: { m: rec((p) => momentName('m', p)), v: rec((p) => momentName('v', p)) },
        hyperparameters: graphs.hyperInputs,
      },
      outputs: {
        loss: TRAIN_OUTPUTS.loss,
        gradNorm: TRAIN_OUTPUTS.gradNorm,
        params: rec(TRAIN_OUTPUTS.param),
        moments: { m: rec((p) => TRAIN_OUTPUTS.moment('m', p)), v: rec((p) => TRAIN_OUTPUTS.moment('v', p)) },
      },
    },
    eval: { inputs: { data: graphs.io.data, params: graphs.io.params }, outputs: { ...EVAL_OUTPUTS, predictions: graphs.heads.map((_, i) => evalPrediction(i)) } },
    labels: graphs.labels,
    heads: graphs.heads,
    bounds: graphs.bounds,
    dropped: graphs.dropped,
    warnings: graphs.warnings,
    hyperparameters: DEFAULT_HYPERPARAMETERS,
    versions: { 'peanut-onnx': VERSION, [o.runtime.name]: o.runtime.version },
  };
}

/**
 * Parses and checks a manifest's JSON text (`what` names it in messages; `dir` is the artifact
 * directory, for the command that rebuilds old artifacts).
 */
export function parseManifest(text: string, what: string, dir = '<dir>'): Manifest {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (err) {
    throw new PeanutError('E_BAD_CONFIG', `${what} is not valid JSON (${(err as Error).message})`);
  }
  if ((manifest?.format as string) === 'peanut-onnx-artifacts/1') {
    // Checkpoints are unaffected: a run of the old artifacts continues with --resume on new ones.
    const from = manifest.source ? ` ${manifest.source}` : ' <adapted.onnx>';
    throw new PeanutError(
      'E_BAD_CONFIG',
      `${what} belongs to training artifacts of an earlier peanut-onnx version (float64 optimizer inputs); rebuild them with \`peanut-onnx artifacts${from} --task ${manifest.task} -o ${dir}\` (existing run checkpoints stay valid)`,
    );
  }
  if (manifest?.format !== MANIFEST_FORMAT) throw new PeanutError('E_BAD_CONFIG', `${what} is not a peanut-onnx artifact manifest (format ${JSON.stringify(manifest?.format)})`);
  // Manifests written before heads, bounds and several label inputs: one `labels` name.
  const labels = (manifest as { labels: unknown }).labels;
  if (typeof labels === 'string') manifest.labels = [{ name: labels, field: 'labels' }];
  manifest.heads ??= [];
  manifest.bounds ??= {};
  manifest.dropped ??= [];
  manifest.warnings ??= [];
  manifest.eval.outputs.predictions ??= [EVAL_OUTPUTS.prediction];
  return manifest;
}
