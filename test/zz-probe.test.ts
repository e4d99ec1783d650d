import { it } from 'vitest';
import { buildOpModel } from './helpers/gradcheck.ts';
import { encodeModel } from '../src/onnx/io.ts';
import { ort } from '../src/runtime.ts';
it('probe', async () => {
  for (const [opset, nout, attrs] of [[9, 1, {}], [9, 5, {}], [9, 3, {}], [7, 5, {}], [7, 5, { spatial: 0 }], [14, 3, { training_mode: 1 }], [15, 3, { training_mode: 1 }], [15, 1, { training_mode: 1 }], [14, 1, {}], [12, 5, {}]] as const) {
    const m = buildOpModel({ op: 'BatchNormalization', opset, dtype: 'float32', outputs: nout, attrs: attrs as any, inputs: [{ name: 'x', dims: [4, 2] }, { name: 's', dims: [2], constant: true }, { name: 'b', dims: [2], constant: true }, { name: 'mean', dims: [2], constant: true }, { name: 'var', dims: [2], constant: true }] }, (inp, d) => inp.name === 's' ? [1, 1] : inp.name === 'b' ? [0, 0] : inp.name === 'mean' ? [10, 10] : inp.name === 'var' ? [1, 1] : []);
    try {
      const s = await ort.InferenceSession.create(encodeModel(m));
      const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [4, 2]) });
      console.log('BN', opset, nout, JSON.stringify(attrs), Object.entries(r).map(([k, t]: any) => k + ':' + Array.from(t.data).map((v: any) => Number(v).toFixed(3)).join(',')).join(' | '));
    } catch (e) { console.log('BN', opset, nout, JSON.stringify(attrs), 'FAIL', String(e).slice(0, 160)); }
  }
});
