/**
 * What a run will do, settled before its first step: the hyper-parameters (the manifest's
 * defaults, the checkpoint's values on a resume, the caller's options on top), the number of
 * steps, and on a resume which settings the caller changed.
 */
import { PeanutError } from '../errors.ts';
import { stepsPerEpoch } from '../data/order.ts';
import type { ScheduleName } from './schedule.ts';
import type { Hyperparameters, TrainState } from './checkpoint.ts';
import type { Manifest } from './manifest.ts';
import { parseAdapterSummary } from '../adapter/adapter-meta.ts';
import { checkSameBase } from '../adapter/fingerprint.ts';

/** The settings of a run a caller may choose (every one optional; see `TrainOptions`). */
export interface RunSettings {
  epochs?: number;
  steps?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Global-norm clipping threshold; null or undefined = no clipping. */
  gradClip?: number | null;
  warmup?: number;
  schedule?: ScheduleName;
  seed?: number;
  shuffle?: boolean;
}

type RunHyper = Omit<Hyperparameters, 'totalSteps'>;

const KEYS: ReadonlyArray<keyof RunHyper> = ['lr', 'weightDecay', 'beta1', 'beta2', 'eps', 'gradClip', 'warmup', 'schedule', 'batchSize', 'seed', 'shuffle'];

/** `base` with every setting the caller gave. */
function withSettings(base: RunHyper, o: RunSettings): RunHyper {
  const out = { ...base };
  for (const k of KEYS) if (o[k] !== undefined) (out as Record<string, unknown>)[k] = o[k];
  return out;
}

function validate(h: Hyperparameters): void {
  const bad = (m: string) => new PeanutError('E_BAD_CONFIG', m);
  if (!(h.lr >= 0) || !Number.isFinite(h.lr)) throw bad(`learning rate must be a finite number >= 0, got ${h.lr}`);
  if (!(h.beta1 >= 0 && h.beta1 < 1) || !(h.beta2 >= 0 && h.beta2 < 1)) throw bad(`betas must be in [0, 1), got ${h.beta1}, ${h.beta2}`);
  if (!(h.eps >= 0)) throw bad(`eps must be >= 0, got ${h.eps}`);
  if (!Number.isInteger(h.batchSize) || h.batchSize < 1) throw bad(`batch size must be a positive integer, got ${h.batchSize}`);
  if (h.gradClip !== null && !(h.gradClip > 0)) throw bad(`grad clip must be > 0, got ${h.gradClip}`);
  if (!Number.isInteger(h.totalSteps) || h.totalSteps < 1) throw bad(`the run must have at least one step, got ${h.totalSteps}`);
}

const FLAG: Record<keyof RunHyper, string> = {
  lr: '--lr',
  weightDecay: '--weight-decay',
  beta1: 'beta1',
  beta2: 'beta2',
  eps: 'eps',
  gradClip: '--grad-clip',
  warmup: '--warmup',
  schedule: '--schedule',
  batchSize: '--batch-size',
  seed: '--seed',
  shuffle: '--no-shuffle',
};

export interface ResolvedRun {
  hyper: Hyperparameters;
  /** Steps per epoch of the data. */
  stepsPerEpoch: number;
  /** On a resume: the settings the caller changed, as `--lr 0.001 → 0.01`. */
  changed: string[];
}

/**
 * The run's hyper-parameters and length.
 *
 * @param defaults - the manifest's defaults (a fresh run) — a resumed run starts from `resumed.hyper`
 * @param resumed - the checkpoint a resumed run continues, if any
 * @param force - on a resume, accept changed settings (they are reported in `changed`)
 * @throws PeanutError E_BAD_CONFIG for invalid values, a resumed run already at its end, or changed settings without `force`
 */
export function resolveRun(defaults: RunHyper, settings: RunSettings, dataSize: number, resumed?: TrainState, force = false): ResolvedRun {
  const base: RunHyper = resumed ? { ...defaults, ...resumed.hyper } : defaults;
  const h0 = withSettings(base, settings);
  const perEpoch = stepsPerEpoch({ size: dataSize, batchSize: h0.batchSize });
  const totalSteps = settings.steps ?? (settings.epochs !== undefined ? settings.epochs * perEpoch : resumed?.hyper.totalSteps || perEpoch);
  const hyper: Hyperparameters = { ...h0, totalSteps };
  validate(hyper);
  const changed: string[] = [];
  if (resumed) {
    for (const k of KEYS) {
      const was = (resumed.hyper as Partial<RunHyper>)[k];
      if (was !== undefined && was !== hyper[k]) changed.push(`${FLAG[k]} ${String(was)} → ${String(hyper[k])}`);
    }
    if (changed.length && !force) {
      throw new PeanutError(
        'E_BAD_CONFIG',
        `--resume would continue with other settings than the run was started with (${changed.join(', ')}); repeat the original values, or pass --force to continue with the new ones`,
      );
    }
    if (resumed.step >= totalSteps) {
      throw new PeanutError('E_BAD_CONFIG', `the run is already at step ${resumed.step} of ${totalSteps}; pass a larger --steps or --epochs to train further`);
    }
  }
  return { hyper, stepsPerEpoch: perEpoch, changed };
}

/**
 * Checks that a checkpoint can continue a run of these graphs: it holds every trained θ, and it
 * was trained on the same base weights (the fingerprints its adapter record carries).
 *
 * @param what - the checkpoint, for messages (a path); `source` - the model or artifacts
 * @throws PeanutError E_BAD_SAFETENSORS for a checkpoint of another adapter, E_BASE_MISMATCH for other base weights
 */
export function checkResumable(manifest: Pick<Manifest, 'train' | 'peanut'>, state: TrainState, what: string, source: string): void {
  for (const p of manifest.train.inputs.params) {
    if (!state.params.has(p.name)) throw new PeanutError('E_BAD_SAFETENSORS', `${what} has no tensor '${p.name}'; it belongs to another model or adapter`);
  }
  const ours = parseAdapterSummary(manifest.peanut, source);
  if (ours) checkSameBase(ours, parseAdapterSummary(state.peanut, what), what, source);
}
