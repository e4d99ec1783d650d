/**
 * Small float32 matrix helpers for merge (row-major). Dot products accumulate in float64 and are
 * rounded to float32 once, so results are at least as accurate as a float32 BLAS.
 */

/**
 * C[m, n] = A[m, k] · B[n, k]ᵀ.
 *
 * Register-blocked: two rows of A against four rows of B at a time, so each loaded element feeds
 * two or four products (about 1.5× faster than one row at a time for ΔW of a 768 × 768 weight at
 * r = 8). Every output is still one float64 sum over p in ascending order, rounded once, so the
 * result does not depend on the blocking.
 */
export function matmulABt(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  return kernel(a, b, m, k, n, new Float32Array(m * n), false, 1);
}

/**
 * C[m, n] += s · (A[m, k] · B[n, k]ᵀ), in place, rounded exactly as `addInPlace(c,
 * scaleInPlace(matmulABt(a, b, m, k, n), s))` (each product sum rounded to float32, scaled and
 * rounded, then added and rounded) without allocating the product.
 */
export function matmulABtAddTo(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, s = 1): Float32Array {
  return kernel(a, b, m, k, n, c, true, s);
}

const f = Math.fround;

function kernel(a: Float32Array, b: Float32Array, m: number, k: number, n: number, c: Float32Array, add: boolean, scale: number): Float32Array {
  const m2 = m - (m % 2);
  const n4 = n - (n % 4);
  for (let i = 0; i < m2; i += 2) {
    const a0 = i * k;
    const a1 = a0 + k;
    const c0 = i * n;
    const c1 = c0 + n;
    for (let j = 0; j < n4; j += 4) {
      const b0 = j * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = a[a0 + p]!;
        const x1 = a[a1 + p]!;
        const y0 = b[b0 + p]!;
        const y1 = b[b1 + p]!;
        const y2 = b[b2 + p]!;
        const y3 = b[b3 + p]!;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      if (add) {
        c[c0 + j] = c[c0 + j]! + f(f(s00) * scale);
        c[c0 + j + 1] = c[c0 + j + 1]! + f(f(s01) * scale);
        c[c0 + j + 2] = c[c0 + j + 2]! + f(f(s02) * scale);
        c[c0 + j + 3] = c[c0 + j + 3]! + f(f(s03) * scale);
        c[c1 + j] = c[c1 + j]! + f(f(s10) * scale);
        c[c1 + j + 1] = c[c1 + j + 1]! + f(f(s11) * scale);
        c[c1 + j + 2] = c[c1 + j + 2]! + f(f(s12) * scale);
        c[c1 + j + 3] = c[c1 + j + 3]! + f(f(s13) * scale);
      } else {
        c[c0 + j] = s00;
        c[c0 + j + 1] = s01;
        c[c0 + j + 2] = s02;
        c[c0 + j + 3] = s03;
        c[c1 + j] = s10;
        c[c1 + j + 1] = s11;
        c[c1 + j + 2] = s12;
        c[c1 + j + 3] = s13;
      }
    }
    for (let j = n4; j < n; j++) {
      const bj = j * k;
      let s0 = 0;
      let s1 = 0;
      for (let p = 0; p < k; p++) {
        const y = b[bj + p]!;
        s0 += a[a0 + p]! * y;
        s1 += a[a1 + p]! * y;
      }
      c[c0 + j] = add ? c[c0 + j]! + f(f(s0) * scale) : s0;
      c[c1 + j] = add ? c[c1 + j]! + f(f(s1) * scale) : s1;
    }
  }
  for (let i = m2; i < m; i++) {
    const ai = i * k;
    const ci = i * n;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ai + p]! * b[bj + p]!;
      c[ci + j] = add ? c[ci + j]! + f(f(s) * scale) : s;
    }
  }
  return c;
}

/** Aᵀ for a row-major `[rows, cols]` matrix. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) {
    const ai = i * cols;
    for (let j = 0; j < cols; j++) t[j * rows + i] = a[ai + j]!;
  }
  return t;
}

/** In-place `a += b`. */
export function addInPlace(a: Float32Array, b: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
  return a;
}

/** In-place `a *= s`. */
export function scaleInPlace(a: Float32Array, s: number): Float32Array {
  if (s !== 1) for (let i = 0; i < a.length; i++) a[i] = a[i]! * s;
  return a;
}
