/**
 * Seeded random numbers for the model generators. Every parameter draws from its own stream,
 * seeded from (model seed, parameter key), so a tensor's values depend only on the seed and its
 * module name: not on the order tensors are made in, the opset, or which export variant is built.
 */

import { hashString } from '../../src/util/random.ts';

export { hashString };

/** splitmix32 step, used to spread a seed over the generator state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** sfc32: a small, fast generator with 128 bits of state. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, key = '') {
    const st = { s: (seed ^ hashString(key)) | 0 };
    this.#a = splitmix32(st);
    this.#b = splitmix32(st);
    this.#c = splitmix32(st);
    this.#d = splitmix32(st) | 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in (0, 1], never 0 (safe for log). */
  uniform(): number {
    return (this.nextU32() + 1) / 4294967296;
  }

  /**
   * Fills `out` with N(0, std²) samples by the Box-Muller transform in its polar form
   * (Marsaglia): two normals per accepted point of the unit disc, no trigonometry.
   */
  fillNormal(out: Float32Array, std: number): Float32Array {
    const n = out.length;
    const k = 2 / 4294967296;
    let i = 0;
    while (i < n) {
      const u = this.nextU32() * k - 1;
      const v = this.nextU32() * k - 1;
      const s = u * u + v * v;
      if (s >= 1 || s === 0) continue;
      const f = std * Math.sqrt((-2 * Math.log(s)) / s);
      out[i++] = u * f;
      if (i < n) out[i++] = v * f;
    }
    return out;
  }

  /** Fills `out` with U(lo, hi) samples. */
  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * (this.nextU32() / 4294967296);
    return out;
  }
}

/** `n` samples of N(0, std²) from the stream of (seed, key). */
export function normalArray(seed: number, key: string, n: number, std: number): Float32Array {
  return new Rng(seed, key).fillNormal(new Float32Array(n), std);
}
