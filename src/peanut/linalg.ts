/**
 * Small float32 matrix helpers for merge (row-major). Dot products accumulate in float64 and are
 * rounded to float32 once, so results are at least as accurate as a float32 BLAS.
 */

/** C[m, n] = A[m, k] · B[n, k]ᵀ. */
export function matmulABt(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  if (n >= 16 && k < n) {
    // Short dot products, long rows: accumulate whole output rows (row-axpy) for contiguous inner loops.
    const bt = transpose(b, n, k);
    const acc = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      const ai = i * k;
      for (let p = 0; p < k; p++) {
        const av = a[ai + p]!;
        if (av === 0) continue;
        const bp = p * n;
        for (let j = 0; j < n; j++) acc[j] = acc[j]! + av * bt[bp + j]!;
      }
      c.set(acc, i * n);
    }
    return c;
  }
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    const ci = i * n;
    for (let j = 0; j < n; j++) {
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
