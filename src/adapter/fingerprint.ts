/**
 * Fingerprints of the frozen weights an adapter was made for. PEANuT's ΔW = f(W0; θ) depends on
 * W0 itself (LoRA's does not, but its θ is only meaningful on the weights it was trained on), so
 * parameters trained on one base model and merged into another that merely has the same layer
 * names give wrong weights without any error. Injection records a fingerprint of each target's
 * W0 in the adapter record; the adapter summary carries it into tweaker files and checkpoints;
 * merge, `train --resume` and `export-peft --model` compare them, and merge also checks the W0 it
 * reads against the record.
 *
 * The fingerprint is a 64-bit hash of every float32 value of W0 (as merge reads it: fp16/bf16
 * widened, in its stored layout) plus its shape, layout and stored type: any change to any
 * element shows. Cost: one pass over the target weights, which merge reads anyway; at injection
 * it is one extra read of the targets (see docs/reliability.md for measurements).
 */
import { PeanutError } from '../errors.ts';
import type { AdapterMeta, AdapterSummary, AdapterTarget } from './adapter-meta.ts';

/** What the fingerprint of a target's weight covers besides its values. */
export type WeightShape = Pick<AdapterTarget, 'in' | 'out' | 'layout' | 'elemType'>;

const FORMAT = 'w0h1';

function mix(h: number, k: number, c: number): number {
  k = Math.imul(k, c);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalize(h: number, n: number): number {
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The fingerprint of a weight: `w0h1:<16 hex digits>`, two 32-bit murmur3-style lanes over the
 * float32 bit patterns (even and odd words), then the shape words. It detects any change to the
 * weight except with probability about 2^-32 (it guards against mistakes, not forgery). Stable across platforms (the bit
 * patterns are read as little-endian words of the array, which is how every JS engine on a
 * little-endian host, i.e. all of them in practice, stores them).
 */
export function weightFingerprint(values: Float32Array, shape: WeightShape): string {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let a = 0x9747b28c;
  let b = 0x5bd1e995;
  // Two lanes over alternate words: each word changes one 32-bit lane, at half the cost of
  // running both lanes over every word.
  const even = words.length & ~1;
  for (let i = 0; i < even; i += 2) {
    a = mix(a, words[i]!, 0xcc9e2d51);
    b = mix(b, words[i + 1]!, 0x85ebca77);
  }
  if (even < words.length) a = mix(a, words[even]!, 0xcc9e2d51);
  for (const w of [shape.in, shape.out, shape.layout === 'oi' ? 1 : 0, shape.elemType]) {
    a = mix(a, w, 0xcc9e2d51);
    b = mix(b, w, 0x85ebca77);
  }
  const hex = (x: number) => x.toString(16).padStart(8, '0');
  return `${FORMAT}:${hex(finalize(a, words.length))}${hex(finalize(b, words.length))}`;
}

/**
 * Checks the W0 a merge read for a target against the fingerprint recorded at injection (none
 * recorded: an adapter from before fingerprints, nothing to check).
 *
 * @throws PeanutError E_BASE_MISMATCH when they differ (the adapted model's weight was changed)
 */
export function checkTargetWeight(target: AdapterTarget, values: Float32Array, what: string): void {
  if (!target.w0Hash) return;
  const now = weightFingerprint(values, target);
  if (now !== target.w0Hash) {
    throw new PeanutError(
      'E_BASE_MISMATCH',
      `${what}: the weight '${target.weight}' of ${target.module} is not the one the adapter was injected over (fingerprint ${now}, recorded ${target.w0Hash}); the model was edited after injection: inject again from the original model`,
    );
  }
}

/**
 * Checks that parameters recorded with `summary` (a checkpoint's or tweaker file's) were made on
 * the same base weights as the adapter `meta` (an adapted model's), module by module, where both
 * record a fingerprint. Files written before fingerprints existed pass unchecked; `unchecked`
 * counts the modules that could not be compared.
 *
 * @param what - the file the summary came from, for the message
 * @throws PeanutError E_BASE_MISMATCH naming the first module whose W0 differs
 */
export function checkSameBase(meta: Pick<AdapterMeta, 'targets'> | AdapterSummary, summary: AdapterSummary | undefined, what: string, against: string): { unchecked: number } {
  // A file that records no adapter (bare tensors) has nothing to compare.
  if (!summary) return { unchecked: 0 };
  const mine = 'targets' in meta ? new Map(meta.targets.map((t) => [t.module, t.w0Hash])) : new Map(Object.entries(meta.modules).map(([k, m]) => [k, m.w0Hash]));
  let unchecked = 0;
  for (const [module, hash] of mine) {
    const theirs = summary.modules[module]?.w0Hash;
    if (!hash || !theirs) {
      unchecked += 1;
      continue;
    }
    if (hash !== theirs) {
      throw new PeanutError(
        'E_BASE_MISMATCH',
        `${what} was trained on other base weights than ${against}: the weight of ${module} differs (fingerprint ${theirs} vs ${hash}); PEANuT's ΔW depends on W0, so using these parameters here would give wrong weights. Use them with the adapted model they were trained from`,
      );
    }
  }
  return { unchecked };
}
