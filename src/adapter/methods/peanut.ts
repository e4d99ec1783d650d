/**
 * PEANuT (arXiv 2410.01870; PEFT `peft.tuners.peanut`) in ONNX layout, W0 `[in, out]`:
 *
 *   h  = act(W0 · Aᵀ)                                   A: [r, out]
 *   for i < depth:  res_i = h;  h = act(h · enc_iᵀ)      enc_i: [r, r]
 *   for i < depth:  h = act(h · dec_iᵀ) + res_{depth-1-i} dec_i: [r, r]
 *   ΔW = scaling · (h · Bᵀ)                             B: [out, r]
 *
 * For a weight stored `[out, in]` (Gemm transB=1) the same chain runs transposed, with no
 * Transpose nodes: g = hᵀ = act(A · W0_oi), then g = act(enc_i · g) and g = act(dec_i · g) + res,
 * and ΔWᵀ = scaling · (B · g).
 */
import type { PeanutConfig } from '../config.ts';
import { applyActivation, emitActivation } from '../activations.ts';
import { addInPlace, matmulABt, matmulABtAddTo, scaleInPlace } from '../linalg.ts';
import type { AdapterMethod, ParamSpec } from './method.ts';

const A = 'peanut_A.weight';
const B = 'peanut_B.weight';
const enc = (i: number) => `peanut_encoders.${i}.weight`;
const dec = (i: number) => `peanut_decoders.${i}.weight`;

function get<T>(m: ReadonlyMap<string, T>, key: string): T {
  const v = m.get(key);
  if (v === undefined) throw new Error(`PEANuT parameter '${key}' missing`);
  return v;
}

export const peanutMethod: AdapterMethod<PeanutConfig> = {
  name: 'peanut',
  marker: A,

  paramSpecs(config, layer): ParamSpec[] {
    const { r, depth } = config;
    const specs: ParamSpec[] = [{ suffix: A, shape: [r, layer.out], init: 'kaiming_uniform' }];
    for (let i = 0; i < depth; i++) specs.push({ suffix: enc(i), shape: [r, r], init: 'kaiming_uniform' });
    for (let i = 0; i < depth; i++) specs.push({ suffix: dec(i), shape: [r, r], init: 'kaiming_uniform' });
    specs.push({ suffix: B, shape: [layer.out, r], init: 'zeros' });
    return specs;
  },

  emitDelta(b, config, w0, params, layout) {
    const { depth, act } = config;
    const res: string[] = [];
    let h: string;
    if (layout === 'io') {
      // [in, out] · [out, r] -> [in, r]; right-multiply by transposed parameters.
      const t = (p: string) => b.op('Transpose', [get(params, p)], { perm: [1, 0] });
      h = emitActivation(b, act, b.op('MatMul', [w0, t(A)]));
      for (let i = 0; i < depth; i++) {
        res.push(h);
        h = emitActivation(b, act, b.op('MatMul', [h, t(enc(i))]));
      }
      for (let i = 0; i < depth; i++) h = b.op('Add', [emitActivation(b, act, b.op('MatMul', [h, t(dec(i))])), res[depth - 1 - i]!]);
      h = b.op('MatMul', [h, t(B)]);
    } else {
      // [r, out] · [out, in] -> [r, in] = hᵀ; left-multiply by the parameters as stored.
      h = emitActivation(b, act, b.op('MatMul', [get(params, A), w0]));
      for (let i = 0; i < depth; i++) {
        res.push(h);
        h = emitActivation(b, act, b.op('MatMul', [get(params, enc(i)), h]));
      }
      for (let i = 0; i < depth; i++) h = b.op('Add', [emitActivation(b, act, b.op('MatMul', [get(params, dec(i)), h])), res[depth - 1 - i]!]);
      h = b.op('MatMul', [get(params, B), h]);
    }
    return config.scaling === 1 ? h : b.op('Mul', [h, b.scalar(config.scaling)]);
  },

  computeDelta(config, w0, params, layer, into) {
    const { r, depth, act } = config;
    const rows = layer.in;
    const res: Float32Array[] = [];
    let h = applyActivation(act, matmulABt(w0, get(params, A), rows, layer.out, r));
    for (let i = 0; i < depth; i++) {
      res.push(h);
      h = applyActivation(act, matmulABt(h, get(params, enc(i)), rows, r, r));
    }
    for (let i = 0; i < depth; i++) h = addInPlace(applyActivation(act, matmulABt(h, get(params, dec(i)), rows, r, r)), res[depth - 1 - i]!);
    if (into) return matmulABtAddTo(into, h, get(params, B), rows, r, layer.out, config.scaling);
    return scaleInPlace(matmulABt(h, get(params, B), rows, r, layer.out), config.scaling);
  },
};
