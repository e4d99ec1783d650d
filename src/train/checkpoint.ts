/**
 * Training checkpoints: one safetensors file per save, `<run dir>/checkpoints/step-<N>.safetensors`.
 *
 * Layout (read by `merge --checkpoint` and by `train --resume`):
 *   - θ under their PEFT keys (`<module>.peanut_A.weight`, …), float32;
 *   - AdamW moments as `adam.m.<key>` / `adam.v.<key>`;
 *   - `__metadata__` (strings only, as safetensors requires): `format`, `step` (optimizer steps
 *     done), `epoch` and `position` (where the next batch starts in that epoch's data order),
 *     `seed` and `rng` (how every epoch's order is derived, so a resume reproduces it), and JSON
 *     blobs `hyperparameters` and `peanut` (the adapter config).
 *
 * Each file is written atomically (temp file + rename), so a kill mid-save leaves the previous
 * checkpoint intact and never a truncated one.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PeanutError } from '../errors.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../formats/safetensors.ts';
import { momentName } from './adamw.ts';

export const CHECKPOINT_FORMAT = 'peanut-onnx-train-checkpoint/1';
export const CHECKPOINT_DIR = 'checkpoints';

/** Hyper-parameters that define a run (stored so a resume can continue with the same ones). */
export interface Hyperparameters {
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global-norm clipping threshold; null = no clipping. */
  gradClip: number | null;
  warmup: number;
  schedule: 'constant' | 'linear' | 'cosine';
  batchSize: number;
  totalSteps: number;
  seed: number;
  shuffle: boolean;
}

/** Everything needed to continue a run exactly. */
export interface TrainState {
  /** Optimizer steps done so far. */
  step: number;
  /** Epoch of the next batch (0-based). */
  epoch: number;
  /** Index, in that epoch's data order, of the next batch's first example. */
  position: number;
  params: Map<string, SafeTensor>;
  m: Map<string, SafeTensor>;
  v: Map<string, SafeTensor>;
  hyper: Hyperparameters;
  /** The PEANuT adapter config (opaque JSON), carried for merge/export. */
  peanut?: unknown;
  /** Task the graphs were built for. */
  task?: string;
}

/** How an epoch's data order is derived; recorded in every checkpoint. */
export const RNG_DESCRIPTION = 'mulberry32 Random.forKey(seed, "data-order/epoch-<epoch>").shuffle(0..n-1), identity order with --no-shuffle';

export function checkpointPath(runDir: string, step: number): string {
  return join(runDir, CHECKPOINT_DIR, `step-${step}.safetensors`);
}

/** Writes `<runDir>/checkpoints/step-<N>.safetensors` atomically and returns its path. */
export function saveCheckpoint(runDir: string, state: TrainState): string {
  mkdirSync(join(runDir, CHECKPOINT_DIR), { recursive: true });
  const path = checkpointPath(runDir, state.step);
  writeCheckpointFile(path, state);
  return path;
}

/** Writes one checkpoint file atomically. */
export function writeCheckpointFile(path: string, state: TrainState): void {
  const tensors = new Map<string, SafeTensor>();
  for (const [k, t] of state.params) {
    tensors.set(k, t);
    const m = state.m.get(k);
    const v = state.v.get(k);
    if (!m || !v) throw new PeanutError('E_GRAPH', `optimizer state for '${k}' is missing`);
    tensors.set(momentName('m', k), m);
    tensors.set(momentName('v', k), v);
  }
  writeSafetensors(path, tensors, {
    format: CHECKPOINT_FORMAT,
    step: String(state.step),
    epoch: String(state.epoch),
    position: String(state.position),
    seed: String(state.hyper.seed),
    rng: RNG_DESCRIPTION,
    hyperparameters: JSON.stringify(state.hyper),
    ...(state.peanut !== undefined ? { peanut: typeof state.peanut === 'string' ? state.peanut : JSON.stringify(state.peanut) } : {}),
    ...(state.task ? { task: state.task } : {}),
  });
}

/** Reads a checkpoint written by `saveCheckpoint` (or the initial one from `artifacts`). */
export function loadCheckpoint(path: string): TrainState {
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new PeanutError('E_BAD_SAFETENSORS', `${path} is not a peanut-onnx training checkpoint (metadata 'format' is ${JSON.stringify(metadata.format ?? null)})`);
  }
  const params = new Map<string, SafeTensor>();
  const m = new Map<string, SafeTensor>();
  const v = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) {
    if (k.startsWith('adam.m.')) m.set(k.slice(7), t);
    else if (k.startsWith('adam.v.')) v.set(k.slice(7), t);
    else params.set(k, t);
  }
  for (const k of params.keys()) {
    if (!m.has(k) || !v.has(k)) throw new PeanutError('E_BAD_SAFETENSORS', `${path}: parameter '${k}' has no AdamW moments (adam.m/adam.v)`);
  }
  const int = (key: string) => {
    const n = Number(metadata[key]);
    if (!Number.isInteger(n) || n < 0) throw new PeanutError('E_BAD_SAFETENSORS', `${path}: metadata '${key}' is missing or not a count`);
    return n;
  };
  let peanut: unknown;
  if (metadata.peanut !== undefined) {
    try {
      peanut = JSON.parse(metadata.peanut);
    } catch {
      peanut = metadata.peanut;
    }
  }
  return {
    step: int('step'),
    epoch: int('epoch'),
    position: int('position'),
    params,
    m,
    v,
    hyper: JSON.parse(metadata.hyperparameters ?? '{}') as Hyperparameters,
    peanut,
    task: metadata.task,
  };
}

/** Every checkpoint in `<runDir>/checkpoints`, by ascending step. */
export function listCheckpoints(runDir: string): Array<{ path: string; step: number }> {
  const dir = join(runDir, CHECKPOINT_DIR);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  const found: Array<{ path: string; step: number }> = [];
  for (const f of readdirSync(dir)) {
    const m = /^step-(\d+)\.safetensors$/.exec(f);
    if (m) found.push({ path: join(dir, f), step: Number(m[1]) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/** The checkpoint with the highest step in `<runDir>/checkpoints`, or undefined. */
export function latestCheckpoint(runDir: string): { path: string; step: number } | undefined {
  return listCheckpoints(runDir).at(-1);
}

/**
 * Deletes all but the `keep` newest checkpoints of a run (a long run saving every N steps would
 * otherwise fill the disk). Returns the paths removed. The newest is always kept.
 */
export function pruneCheckpoints(runDir: string, keep: number): string[] {
  const all = listCheckpoints(runDir);
  const drop = all.slice(0, Math.max(0, all.length - Math.max(1, keep)));
  for (const c of drop) rmSync(c.path, { force: true });
  return drop.map((c) => c.path);
}
