import { it } from 'vitest';
import { buildOpModel } from './helpers/gradcheck.ts';
import { encodeModel } from '../src/onnx/io.ts';
import { ort } from '../src/runtime.ts';
const numel = (d: number[]) => d.reduce((a, b) => a * b, 1);
async function run(op: string, domain: string, ins: Array<{ name: string; dims: number[]; type?: any; values?: number[] }>, nout: number, attrs: any = {}, opset = 17) {
  const m = buildOpModel({ op, domain: domain || undefined, opset, dtype: 'float32', attrs, outputs: nout, inputs: ins.map((i) => ({ ...i })) }, (_i, d) => new Array(numel([...d])).fill(0.5));
  try {
    const s = await ort.InferenceSession.create(encodeModel(m));
    const feeds: any = {};
    ins.forEach((d, k) => { if (!d.name) return; const vals = d.values ?? Array.from({ length: numel(d.dims) }, (_, j) => Math.sin(j + k)); feeds[d.name] = d.type === 'int32' ? new ort.Tensor('int32', Int32Array.from(vals), d.dims) : d.type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(vals.map(BigInt)), d.dims) : new ort.Tensor('float32', Float32Array.from(vals), d.dims); });
    const r = await s.run(feeds);
    console.log(op, JSON.stringify(ins.map(i => i.dims)), 'OK', Object.entries(r).map(([k, t]: any) => k + ':' + t.type + '[' + t.dims + '] ' + Array.from(t.data).slice(0, 6).map((v: any) => Number(v).toFixed(4)).join(',')).join(' | '));
  } catch (e) { console.log(op, JSON.stringify(ins.map(i => i.dims)), 'FAIL', String(e).slice(0, 200)); }
}
it('probe', async () => {
  await run('SkipSimplifiedLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [2, 3, 4] }, { name: 'g', dims: [4] }], 4);
  await run('SkipLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [1, 3, 4] }, { name: 'g', dims: [4] }], 4);
  await run('SkipLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [3, 4] }, { name: 'g', dims: [4] }], 4);
  await run('SkipLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [6, 4] }, { name: 'b', dims: [6, 4] }, { name: 'g', dims: [4] }], 4);
  await run('SkipLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [2, 3, 4] }, { name: 'g', dims: [4] }, { name: '', dims: [] }, { name: 'bias', dims: [4] }], 4);
  await run('SkipSimplifiedLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [1, 3, 4] }, { name: 'g', dims: [4] }], 4);
  await run('SkipSimplifiedLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [3, 4] }, { name: 'g', dims: [4] }], 4);
  await run('SkipSimplifiedLayerNormalization', 'com.microsoft', [{ name: 'a', dims: [6, 4] }, { name: 'b', dims: [6, 4] }, { name: 'g', dims: [4] }, { name: 'bias', dims: [4] }], 4);
  await run('SimplifiedLayerNormalization', '', [{ name: 'a', dims: [2, 3, 4] }, { name: 'g', dims: [3, 4] }], 2, { axis: 1 });
  await run('SimplifiedLayerNormalization', '', [{ name: 'a', dims: [2, 3, 4] }, { name: 'g', dims: [4] }], 2, { axis: 1 });
  await run('RMSNormalization', '', [{ name: 'a', dims: [2, 3, 4] }, { name: 'g', dims: [3, 4] }], 1, { axis: 1 }, 23);
  await run('RMSNormalization', '', [{ name: 'a', dims: [2, 3, 4] }, { name: 'g', dims: [1, 4] }], 1, { axis: 1 }, 23);
  await run('RMSNormalization', '', [{ name: 'a', dims: [2, 3, 4] }, { name: 'g', dims: [2, 3, 4] }], 1, { axis: -1 }, 23);
  const E = (extra: any[], nout: number, attrs: any = {}) => run('EmbedLayerNormalization', 'com.microsoft', extra, nout, attrs);
  const ids = { name: 'ids', dims: [2, 3], type: 'int32', values: [0, 1, 4, 2, 2, 3] };
  const seg = { name: 'seg', dims: [2, 3], type: 'int32', values: [0, 0, 1, 1, 0, 1] };
  const we = { name: 'we', dims: [5, 4] }, pe = { name: 'pe', dims: [6, 4] }, se = { name: 'se', dims: [2, 4] }, g = { name: 'g', dims: [4] }, b = { name: 'b', dims: [4] };
  const mask = { name: 'mask', dims: [2, 3], type: 'int32', values: [1, 1, 0, 1, 0, 1] };
  const pos = { name: 'pos', dims: [2, 3], type: 'int32', values: [2, 1, 0, 5, 4, 3] };
  const pos1 = { name: 'pos', dims: [1, 3], type: 'int32', values: [2, 1, 0] };
  await E([ids, seg, we, pe, se, g, b], 3);
  await E([ids, seg, we, pe, se, g, b, mask], 3);
  await E([ids, { name: '', dims: [] }, we, pe, { name: '', dims: [] }, g, b], 3);
  await E([ids, seg, we, pe, se, g, b, { name: '', dims: [] }, pos], 3);
  await E([ids, seg, we, pe, se, g, b, mask, pos1], 3);
  await E([ids, seg, we, pe, se, g, b, mask], 2, { mask_index_type: 0 });
  await E([ids, seg, we, pe, se, g, b], 1);
  await E([{ ...ids, type: 'int64' }, seg, we, pe, se, g, b], 2);
});
