/**
 * Finite-difference checks of the arithmetic, activation, softmax and linear-algebra gradient
 * rules through onnxruntime (see test/helpers/gradcheck.ts). float64 where ORT's CPU kernels take
 * doubles; float32 (eps 1e-2, atol = rtol = 2e-3) where they do not (Erf, Gelu). The cases are
 * in cases-math.ts.
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { describe, expect, it } from 'vitest';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { buildOpModel, gradCheck, randomValues } from '../helpers/gradcheck.ts';
import { MATH_CASES as CASES } from './cases-math.ts';

describe('gradient rules: finite differences through onnxruntime', () => {
  it.each(CASES)('%s', async (_label, c) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
  });

  it('emits no weight gradient for a frozen MatMul weight', async () => {
    const r = await gradCheck({ op: 'MatMul', inputs: [{ name: 'a', dims: [2, 3, 4] }, { name: 'w', dims: [4, 5], constant: true, values: randomValues(20, 11) }] });
    // dA = dY·Wᵀ only: one Gemm over the rows (transB, so no Transpose of the weight, which
    // ONNX Runtime would fold into a stored transposed copy), no second GEMM for dW.
    expect(r.backwardOps.filter((o) => o === 'MatMul' || o === 'Gemm' || o === 'Transpose')).toEqual(['Gemm']);
  });
});

describe('Dropout in training mode with the real kernel', () => {
  // The finite-difference cases above run a composed forward with a fixed mask; this runs ORT's
  // own random Dropout and checks the rule against the mask it drew: dX = dY·mask/(1 − ratio),
  // and the kernel's Y = X·mask/(1 − ratio) (so the composed forward is the kernel's semantics).
  it('dX = dY·mask/(1 − ratio) for the mask the kernel drew', async () => {
    const ratio = 0.3;
    const proto = buildOpModel(
      { op: 'Dropout', opset: 13, outputs: 2, dtype: 'float32', attrs: { seed: 7 }, inputs: [{ name: 'x', dims: [4, 50] }, { name: 'ratio', dims: [], type: 'float32', constant: true }, { name: 'tm', dims: [], type: 'bool', constant: true }] },
      (inp) => (inp.name === 'ratio' ? [ratio] : [1]),
    );
    const g = proto.graph!;
    g.input.push(makeValueInfo('R', DT.FLOAT, [4, 50]));
    const x = new ort.Tensor('float32', Float32Array.from(randomValues(200, 3)), [4, 50]);
    const r = new ort.Tensor('float32', Float32Array.from(randomValues(200, 4)), [4, 50]);
    const shapes = await probeShapes(nodeRuntime, { proto, baseDir: '.' }, { batches: [{ x, R: r }, { x, R: r }] });
    const { grads } = buildGradients({ graph: new Graph(g), opset: 13, seeds: new Map([['Y0', 'R']]), params: ['x'], shapes });
    g.output = [makeValueInfo('Y0'), makeValueInfo('Y1'), makeValueInfo(grads.get('x')!)];
    const session = await ort.InferenceSession.create(encodeModel(proto));
    try {
      const out = await session.run({ x, R: r });
      const y = out['Y0']!.data as Float32Array;
      const mask = out['Y1']!.data as Uint8Array;
      const dx = out[grads.get('x')!]!.data as Float32Array;
      const kept = mask.reduce((n, m) => n + (m ? 1 : 0), 0);
      expect(kept).toBeGreaterThan(100); // a real draw: some kept, some dropped
      expect(kept).toBeLessThan(180);
      for (let i = 0; i < 200; i++) {
        const m = mask[i] ? 1 : 0;
        expect(y[i]).toBeCloseTo(((x.data as Float32Array)[i]! * m) / (1 - ratio), 5);
        expect(dx[i]).toBeCloseTo(((r.data as Float32Array)[i]! * m) / (1 - ratio), 5);
      }
    } finally {
      await session.release();
    }
  });

  it('EXPECTED FAILURE - training mode without the mask output', async () => {
    await expect(
      gradCheck({ op: 'Dropout', opset: 13, outputs: 1, inputs: [{ name: 'x', dims: [2, 3] }, { name: 'ratio', dims: [], constant: true, values: [0.5] }, { name: 'tm', dims: [], type: 'bool', constant: true, values: [1] }] }),
    ).rejects.toMatchObject({ code: 'E_UNSUPPORTED_OP', message: expect.stringMatching(/Dropout node .*no mask output/) });
  });
});
