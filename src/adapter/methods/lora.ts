/**
 * LoRA with PEFT semantics, in ONNX layout: lora_A `[r, in]` (Kaiming-uniform), lora_B
 * `[out, r]` (zeros), ΔW_torch = (alpha / r)·(B · A) `[out, in]`, so in `[in, out]` layout
 * ΔW = (alpha / r)·(Aᵀ · Bᵀ). The frozen weight does not enter ΔW.
 */
import type { LoraConfig } from '../config.ts';
import { matmulABt, matmulABtAddTo, scaleInPlace, transpose } from '../linalg.ts';
import type { AdapterMethod, ParamSpec } from './method.ts';

const A = 'lora_A.weight';
const B = 'lora_B.weight';

function get<T>(m: ReadonlyMap<string, T>, key: string): T {
  const v = m.get(key);
  if (v === undefined) throw new Error(`LoRA parameter '${key}' missing`);
  return v;
}

export const loraMethod: AdapterMethod<LoraConfig> = {
  name: 'lora',
  marker: A,

  paramSpecs(config, layer): ParamSpec[] {
    return [
      { suffix: A, shape: [config.r, layer.in], init: 'kaiming_uniform' },
      { suffix: B, shape: [layer.out, config.r], init: 'zeros' },
    ];
  },

  emitDelta(b, config, _w0, params, layout) {
    const a = get(params, A);
    const bb = get(params, B);
    const t = (x: string) => b.op('Transpose', [x], { perm: [1, 0] });
    // io: Aᵀ [in, r] · Bᵀ [r, out];  oi: B [out, r] · A [r, in]
    const d = layout === 'io' ? b.op('MatMul', [t(a), t(bb)]) : b.op('MatMul', [bb, a]);
    const s = config.alpha / config.r;
    return s === 1 ? d : b.op('Mul', [d, b.scalar(s)]);
  },

  computeDelta(config, _w0, params, layer, into) {
    const at = transpose(get(params, A), config.r, layer.in);
    if (into) return matmulABtAddTo(into, at, get(params, B), layer.in, config.r, layer.out, config.alpha / config.r);
    return scaleInPlace(matmulABt(at, get(params, B), layer.in, config.r, layer.out), config.alpha / config.r);
  },
};
