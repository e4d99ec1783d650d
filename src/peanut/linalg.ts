/**
 * Small float32 matrix helpers for merge (row-major). Dot products accumulate in float64 and are
 * rounded to float32 once, so results are at least as accurate as a float32 BLAS.
 */

/** C[m, n] = A[m, k] · B[n, k]ᵀ. */
export function matmulABt(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  // Four dot products at a time, so each element of A's row is loaded once per four outputs.
  const n4 = n - (n % 4);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    const ci = i * n;
    for (let j = 0; j < n4; j += 4) {
      const b0 = j * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let p = 0; p < k; p++) {
        const av = a[ai + p]!;
        s0 += av * b[b0 + p]!;
        s1 += av * b[b1 + p]!;
        s2 += av * b[b2 + p]!;
        s3 += av * b[b3 + p]!;
      }
      c[ci + j] = s0;
      c[ci + j + 1] = s1;
      c[ci + j + 2] = s2;
      c[ci + j + 3] = s3;
    }
    for (let j = n4; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ai + p]! * b[bj + p]!;
      c[ci + j] = s;
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
