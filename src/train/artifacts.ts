/**
 * Training artifacts: a self-describing directory that `train <dir>` needs nothing else to run.
 *
 *   train.onnx              forward + loss + backward + clipping + AdamW (one run = one step)
 *   eval.onnx               forward + loss + prediction
 *   checkpoint.safetensors  initial θ (PEFT keys), zero AdamW moments, step 0
 *   manifest.json           task, PEANuT config, input/output names, hyper-parameter defaults, versions
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PeanutError } from '../errors.ts';
import { saveModel, type OnnxModel } from '../onnx/io.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { ort } from '../runtime.ts';
import type { SafeTensor } from '../safetensors.ts';
import type { AdamWInputNames } from './adamw.ts';
import { writeCheckpointFile, type Hyperparameters, type TrainState } from './checkpoint.ts';
import { EVAL_OUTPUTS, TRAIN_OUTPUTS, type TensorSpec, type TrainingGraphs } from './training-graph.ts';

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
  /** The adapter config, from the adapted model's metadata. */
  peanut: unknown;
  /** The adapted model the artifacts were built from. */
  source: string | null;
  files: typeof ARTIFACT_FILES;
  train: {
    inputs: { data: TensorSpec[]; params: TensorSpec[]; moments: { m: Record<string, string>; v: Record<string, string> }; hyperparameters: AdamWInputNames };
    outputs: { loss: string; gradNorm: string; params: Record<string, string>; moments: { m: Record<string, string>; v: Record<string, string> } };
  };
  eval: { inputs: { data: TensorSpec[]; params: TensorSpec[] }; outputs: typeof EVAL_OUTPUTS };
  labels: string;
  hyperparameters: Omit<Hyperparameters, 'totalSteps'>;
  versions: { 'peanut-onnx': string; 'onnxruntime-node': string };
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The manifest describing `graphs`. */
export function makeManifest(graphs: TrainingGraphs, task: string, peanut: unknown, source: string | null): Manifest {
  const names = graphs.io.params.map((p) => p.name);
  const rec = (f: (p: string) => string) => Object.fromEntries(names.map((p) => [p, f(p)]));
  return {
    format: MANIFEST_FORMAT,
    task,
    peanut,
    source,
    files: ARTIFACT_FILES,
    train: {
      inputs: {
        data: graphs.io.data,
        params: graphs.io.params,
        moments: { m: rec((p) => `adam.m.${p}`), v: rec((p) => `adam.v.${p}`) },
        hyperparameters: graphs.hyperInputs,
      },
      outputs: {
        loss: TRAIN_OUTPUTS.loss,
        gradNorm: TRAIN_OUTPUTS.gradNorm,
        params: rec(TRAIN_OUTPUTS.param),
        moments: { m: rec((p) => TRAIN_OUTPUTS.moment('m', p)), v: rec((p) => TRAIN_OUTPUTS.moment('v', p)) },
      },
    },
    eval: { inputs: { data: graphs.io.data, params: graphs.io.params }, outputs: EVAL_OUTPUTS },
    labels: graphs.labels,
    hyperparameters: DEFAULT_HYPERPARAMETERS,
    versions: { 'peanut-onnx': packageVersion(), 'onnxruntime-node': ort.env.versions.node ?? 'unknown' },
  };
}

/** The initial training state: θ as given, zero moments, step 0. */
export function initialState(params: Map<string, SafeTensor>, manifest: Manifest): TrainState {
  const zeros = (t: SafeTensor): SafeTensor => ({ dtype: 'F32', shape: [...t.shape], data: new Float32Array(t.data.length) });
  return {
    step: 0,
    epoch: 0,
    position: 0,
    params,
    m: new Map([...params].map(([k, t]) => [k, zeros(t)])),
    v: new Map([...params].map(([k, t]) => [k, zeros(t)])),
    hyper: { ...manifest.hyperparameters, totalSteps: 0 },
    peanut: manifest.peanut,
    task: manifest.task,
  };
}

/** Writes the artifact directory (each file atomically). */
export function writeArtifacts(dir: string, graphs: TrainingGraphs, manifest: Manifest, params: Map<string, SafeTensor>, baseDir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${dir} is a file; artifacts are written into a directory`);
  mkdirSync(dir, { recursive: true });
  // The eval graph reads the same frozen weights as the train graph: when those go to external
  // data, the eval graph references the train graph's data file instead of a second copy.
  const trainData = saveModel({ proto: graphs.train, baseDir } satisfies OnnxModel, join(dir, ARTIFACT_FILES.train));
  saveModel({ proto: graphs.eval, baseDir } satisfies OnnxModel, join(dir, ARTIFACT_FILES.eval), trainData ? { shareDataWith: trainData } : {});
  writeCheckpointFile(join(dir, ARTIFACT_FILES.checkpoint), initialState(params, manifest));
  writeFileAtomic(join(dir, ARTIFACT_FILES.manifest), new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
}

export interface LoadedArtifacts {
  dir: string;
  manifest: Manifest;
  trainPath: string;
  evalPath: string;
  checkpointPath: string;
}

/** Reads and checks an artifact directory. */
export function readArtifacts(dir: string): LoadedArtifacts {
  const manifestPath = join(dir, ARTIFACT_FILES.manifest);
  if (!existsSync(manifestPath)) {
    throw new PeanutError('E_FILE_NOT_FOUND', `${dir} has no ${ARTIFACT_FILES.manifest}; create training artifacts with \`peanut-onnx artifacts <adapted.onnx> --task <task> -o ${dir}\` or pass an adapted .onnx`);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (err) {
    throw new PeanutError('E_BAD_CONFIG', `${manifestPath} is not valid JSON (${(err as Error).message})`);
  }
  if ((manifest.format as string) === 'peanut-onnx-artifacts/1') {
    // Checkpoints are unaffected: a run of the old artifacts continues with --resume on new ones.
    const from = manifest.source ? ` ${manifest.source}` : ' <adapted.onnx>';
    throw new PeanutError('E_BAD_CONFIG', `${dir} holds training artifacts of an earlier peanut-onnx version (float64 optimizer inputs); rebuild them with \`peanut-onnx artifacts${from} --task ${manifest.task} -o ${dir}\` (existing run checkpoints stay valid)`);
  }
  if (manifest.format !== MANIFEST_FORMAT) throw new PeanutError('E_BAD_CONFIG', `${manifestPath} is not a peanut-onnx artifact manifest (format ${JSON.stringify(manifest.format)})`);
  const files = { trainPath: join(dir, ARTIFACT_FILES.train), evalPath: join(dir, ARTIFACT_FILES.eval), checkpointPath: join(dir, ARTIFACT_FILES.checkpoint) };
  for (const f of Object.values(files)) if (!existsSync(f)) throw new PeanutError('E_FILE_NOT_FOUND', `artifact file missing: ${f} (re-run \`peanut-onnx artifacts\`)`);
  return { dir, manifest, ...files };
}
