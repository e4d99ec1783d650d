import { describe, expect, it } from 'vitest';
import { addInPlace, matmulABt, matmulABtAddTo, scaleInPlace } from '../../src/adapter/linalg.ts';

/** Values with exact zeros and negative zeros mixed in, deterministic. */
function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => {
    const v = Math.sin((i + 1) * 12.9898 + seed * 78.233) * 43758.5453;
    const x = (v - Math.floor(v) - 0.5) * 2;
    return i % 11 === 3 ? -0 : i % 13 === 5 ? 0 : x;
  });
}

/** The unblocked definition: one float64 sum over p in ascending order per output. */
function reference(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[j * k + p]!;
      c[i * n + j] = s;
    }
  }
  return c;
}

const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
const SHAPES: Array<[number, number, number]> = [[1, 1, 1], [2, 4, 4], [3, 5, 7], [5, 3, 2], [7, 1, 9], [9, 17, 6], [0, 3, 4], [4, 0, 3], [33, 8, 30], [30, 64, 8]];

describe('matmulABt', () => {
  it('equals the unblocked float64 sums bit for bit, tails included', () => {
    for (const [m, k, n] of SHAPES) {
      const a = values(m * k, m + k);
      const b = values(n * k, n + 2 * k);
      expect(bits(matmulABt(a, b, m, k, n)), `${m}x${k}x${n}`).toEqual(bits(reference(a, b, m, k, n)));
    }
  });

  it('matmulABtAddTo rounds exactly as addInPlace(c, scaleInPlace(matmulABt(...), s))', () => {
    for (const [m, k, n] of SHAPES) {
      for (const s of [1, 0.37, -2]) {
        const a = values(m * k, m);
        const b = values(n * k, n + 1);
        const c = values(m * n, 7);
        const want = addInPlace(c.slice(), scaleInPlace(matmulABt(a, b, m, k, n), s));
        const got = c.slice();
        expect(matmulABtAddTo(got, a, b, m, k, n, s)).toBe(got);
        expect(bits(got), `${m}x${k}x${n} s=${s}`).toEqual(bits(want));
      }
    }
  });
});
