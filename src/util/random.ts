/**
 * Deterministic pseudo-random numbers. Initialisation and data shuffling must be reproducible
 * from a user-given `--seed` on every platform, so the project carries its own small generator
 * (mulberry32: 32-bit state, period 2^32, good enough for weight init and shuffles) instead of
 * `Math.random`.
 *
 *   const rng = new Random(0);
 *   rng.uniform(-1, 1); rng.shuffle([1, 2, 3]);
 *   Random.forKey(0, 'bert.encoder.layer.0.attention.self.query.peanut_A.weight');
 */

/** 32-bit FNV-1a hash of a string (UTF-16 code units). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Random {
  #state: number;

  /** @param seed - any integer; only its low 32 bits are used. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`'seed' must be a finite number, got ${seed}`);
    this.#state = Math.trunc(seed) >>> 0;
  }

  /**
   * A generator whose stream depends only on `seed` and `key`, so the values drawn for one
   * parameter do not change when other parameters are added or removed.
   */
  static forKey(seed: number, key: string): Random {
    return new Random((Math.imul(Math.trunc(seed) >>> 0, 0x9e3779b1) ^ hashString(key)) >>> 0);
  }

  /** The next 32-bit unsigned integer (mulberry32). */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`'n' must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fills a Float32Array with U[lo, hi). */
  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }
}

/** A seeded permutation of 0..n-1. */
export function seededPermutation(n: number, seed: number): number[] {
  return new Random(seed).shuffle(Array.from({ length: n }, (_, i) => i));
}
