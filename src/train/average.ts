/**
 * The weighted average of θ from several runs of the same adapted model (federated rounds:
 * each client trains the same adapter on its own data, the server averages what comes back).
 * θ is a few KB, so a round trip costs next to nothing.
 *
 * Every checkpoint must hold the same adapter (the same θ keys and shapes) trained on the same
 * base weights (the fingerprints their adapter records carry). θ and the AdamW moments are
 * averaged with the same weights; the step, data cursor, hyper-parameters, adapter record and task
 * are the first checkpoint's, so `merge --checkpoint`, `export-peft` and `train --resume` take
 * the result as they take any checkpoint.
 */
import { PeanutError } from '../errors.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import { checkSameBase } from '../adapter/fingerprint.ts';
import { parseAdapterSummary } from '../adapter/adapter-meta.ts';
import type { TrainState } from './checkpoint.ts';

function f32(t: SafeTensor, key: string, what: string): Float32Array {
  if (t.dtype !== 'F32' || !(t.data instanceof Float32Array)) throw new PeanutError('E_BAD_SAFETENSORS', `${what}: '${key}' is ${t.dtype}, not F32`);
  return t.data;
}

/** Σ wᵢ·xᵢ over the checkpoints' tensors of one key. */
function weightedSum(tensors: readonly SafeTensor[], weights: readonly number[], key: string, names: readonly string[]): SafeTensor {
  const first = tensors[0]!;
  const out = new Float32Array(first.data.length);
  tensors.forEach((t, i) => {
    const x = f32(t, key, names[i]!);
    const w = weights[i]!;
    for (let j = 0; j < out.length; j++) out[j]! += w * x[j]!;
  });
  return { dtype: 'F32', shape: [...first.shape], data: out };
}

/**
 * Averages checkpoints.
 *
 * @param states - the checkpoints, read; `names` name them in messages (paths)
 * @param weights - one non-negative weight each (e.g. examples seen), normalised to sum 1; default equal
 * @throws PeanutError E_BAD_CONFIG for fewer than two checkpoints or bad weights, E_BAD_SAFETENSORS
 *   for checkpoints of different adapters, E_BASE_MISMATCH for different base weights
 */
export function averageStates(states: readonly TrainState[], names: readonly string[], weights?: readonly number[]): TrainState {
  if (states.length < 2) throw new PeanutError('E_BAD_CONFIG', `averaging needs at least two checkpoints, got ${states.length}`);
  const w = weights ?? states.map(() => 1);
  if (w.length !== states.length) throw new PeanutError('E_BAD_CONFIG', `--weights gives ${w.length} weight(s) for ${states.length} checkpoints; give one per checkpoint`);
  if (w.some((x) => !Number.isFinite(x) || x < 0)) throw new PeanutError('E_BAD_CONFIG', `--weights must be finite numbers >= 0, got ${w.join(',')}`);
  const total = w.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new PeanutError('E_BAD_CONFIG', '--weights must not all be 0');
  const norm = w.map((x) => x / total);

  const [first, ...rest] = states as [TrainState, ...TrainState[]];
  const keys = [...first.params.keys()];
  const summary = parseAdapterSummary(first.peanut, names[0]!);
  rest.forEach((s, i) => {
    const name = names[i + 1]!;
    const theirs = [...s.params.keys()];
    const missing = keys.filter((k) => !s.params.has(k));
    const extra = theirs.filter((k) => !first.params.has(k));
    if (missing.length || extra.length) {
      const what = [missing.length ? `lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}` : '', extra.length ? `has ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', …' : ''}` : ''].filter(Boolean).join(' and ');
      throw new PeanutError('E_BAD_SAFETENSORS', `${name} holds another adapter than ${names[0]} (it ${what}); only checkpoints of the same adapted model can be averaged`);
    }
    for (const k of keys) {
      const [a, b] = [first.params.get(k)!.shape, s.params.get(k)!.shape];
      if (a.join() !== b.join()) throw new PeanutError('E_BAD_SAFETENSORS', `${name}: '${k}' is [${b.join(', ')}] where ${names[0]} has [${a.join(', ')}]; only checkpoints of the same adapted model can be averaged`);
    }
    if (summary) checkSameBase(summary, parseAdapterSummary(s.peanut, name), name, names[0]!);
    if (s.task !== first.task) throw new PeanutError('E_BAD_CONFIG', `${name} was trained for task '${s.task}', ${names[0]} for '${first.task}'; average checkpoints of one task`);
  });
  const avg = (pick: (s: TrainState) => Map<string, SafeTensor>) => new Map(keys.map((k) => [k, weightedSum(states.map((s) => pick(s).get(k)!), norm, k, names)]));
  return { ...first, params: avg((s) => s.params), m: avg((s) => s.m), v: avg((s) => s.v) };
}
