/**
 * Training checkpoints as bytes (safetensors), the one format the CLI, the library and the
 * browser module all read and write. Files and run directories are src/node/run-dir.ts.
 *
 * Layout (read by `merge --checkpoint`, `export-peft` and `train --resume`):
 *   - θ under their PEFT keys (`<module>.peanut_A.weight`, …), float32;
 *   - AdamW moments as `adam.m.<key>` / `adam.v.<key>`;
 *   - `__metadata__` (strings only, as safetensors requires): `format`, `step` (optimizer steps
 *     done), `epoch` and `position` (where the next batch starts in that epoch's data order),
 *     `seed` and `rng` (how every epoch's order is derived, so a resume reproduces it), and JSON
 *     blobs `hyperparameters` and `peanut` (the adapter summary), and `task`.
 */
import { PeanutError } from '../errors.ts';
import { encodeSafetensors, parseSafetensors, type SafeTensor } from '../formats/safetensors.ts';
import { momentName, parseMomentName } from '../formats/checkpoint-keys.ts';

export const CHECKPOINT_FORMAT = 'peanut-onnx-train-checkpoint/1';

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
  /** The adapter summary (JSON), carried for merge/export. */
  peanut?: unknown;
  /** Task the graphs were built for. */
  task?: string;
}

/** How an epoch's data order is derived; recorded in every checkpoint. */
export const RNG_DESCRIPTION = 'mulberry32 Random.forKey(seed, "data-order/epoch-<epoch>").shuffle(0..n-1), identity order with --no-shuffle';

/** The checkpoint's safetensors encoding (chunks to write in order). */
export function encodeCheckpoint(state: TrainState): Uint8Array[] {
  const tensors = new Map<string, SafeTensor>();
  for (const [k, t] of state.params) {
    tensors.set(k, t);
    const m = state.m.get(k);
    const v = state.v.get(k);
    if (!m || !v) throw new PeanutError('E_GRAPH', `optimizer state for '${k}' is missing`);
    tensors.set(momentName('m', k), m);
    tensors.set(momentName('v', k), v);
  }
  return encodeSafetensors(tensors, {
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

/** The checkpoint as one buffer. */
export function checkpointBytes(state: TrainState): Uint8Array {
  const chunks = encodeCheckpoint(state);
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Reads a checkpoint written by `encodeCheckpoint` (or the initial one from `artifacts`).
 * `what` names it in messages (a file path).
 */
export function decodeCheckpoint(bytes: Uint8Array, what: string): TrainState {
  const { tensors, metadata } = parseSafetensors(bytes, what);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new PeanutError('E_BAD_SAFETENSORS', `${what} is not a peanut-onnx training checkpoint (metadata 'format' is ${JSON.stringify(metadata.format ?? null)})`);
  }
  const params = new Map<string, SafeTensor>();
  const m = new Map<string, SafeTensor>();
  const v = new Map<string, SafeTensor>();
  for (const [k, t] of tensors) {
    const moment = parseMomentName(k);
    if (moment) (moment.which === 'm' ? m : v).set(moment.param, t);
    else params.set(k, t);
  }
  for (const k of params.keys()) {
    if (!m.has(k) || !v.has(k)) throw new PeanutError('E_BAD_SAFETENSORS', `${what}: parameter '${k}' has no AdamW moments (adam.m/adam.v)`);
  }
  const int = (key: string) => {
    const n = Number(metadata[key]);
    if (!Number.isInteger(n) || n < 0) throw new PeanutError('E_BAD_SAFETENSORS', `${what}: metadata '${key}' is missing or not a count`);
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
  let hyper: Hyperparameters;
  try {
    hyper = JSON.parse(metadata.hyperparameters ?? '{}') as Hyperparameters;
  } catch {
    throw new PeanutError('E_BAD_SAFETENSORS', `${what}: metadata 'hyperparameters' is not valid JSON`);
  }
  return { step: int('step'), epoch: int('epoch'), position: int('position'), params, m, v, hyper, peanut, task: metadata.task };
}

/** The initial training state: θ as given, zero moments, step 0. */
export function initialState(params: Map<string, SafeTensor>, hyper: Omit<Hyperparameters, 'totalSteps'>, peanut: unknown, task: string): TrainState {
  const zeros = (t: SafeTensor): SafeTensor => ({ dtype: 'F32', shape: [...t.shape], data: new Float32Array(t.data.length) });
  return {
    step: 0,
    epoch: 0,
    position: 0,
    params,
    m: new Map([...params].map(([k, t]) => [k, zeros(t)])),
    v: new Map([...params].map(([k, t]) => [k, zeros(t)])),
    hyper: { ...hyper, totalSteps: 0 },
    peanut,
    task,
  };
}
