/**
 * Tweaker state: the adapter parameters as `Map<PEFT key, Float32Array>` (PEFT shapes,
 * row-major), and its safetensors form (`--init`, `--save-tweaker`, checkpoints).
 */
import { PeanutError } from '../errors.ts';
import { bf16BitsToFloat, halfBitsToFloat } from '../onnx/dtype.ts';
import { graphOf, type OnnxModel } from '../onnx/model.ts';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor.ts';
import { type SafeTensor } from '../formats/safetensors.ts';
import { ADAPTER_META_KEY, summarizeAdapter, type AdapterMeta, type AdapterParam } from './adapter-meta.ts';

/** Adapter parameter values by PEFT key. */
export type TweakerState = Map<string, Float32Array>;

/** The prefix PEFT puts before module paths in saved adapters (`base_model.model.<module>.…`). */
export const PEFT_KEY_PREFIX = 'base_model.model.';

function toFloat32(name: string, t: SafeTensor, what: string): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F64':
      return Float32Array.from(t.data as Float64Array);
    case 'F16':
      return Float32Array.from(t.data as Uint16Array, halfBitsToFloat);
    case 'BF16':
      return Float32Array.from(t.data as Uint16Array, bf16BitsToFloat);
    default:
      throw new PeanutError('E_BAD_SAFETENSORS', `${what}: tensor '${name}' is ${t.dtype}; tweaker parameters must be floating point`);
  }
}

function listShort(names: readonly string[], max = 8): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, … (${names.length} in all)`;
}

export interface StateFromTensorsOptions {
  /** Ignore keys that are not adapter parameters (checkpoints carry optimizer moments). */
  allowExtra?: boolean;
  /** How to name the source in messages (a file path). */
  what?: string;
}

/**
 * Picks the adapter parameters out of a set of tensors, checking every key and shape.
 * Keys may carry PEFT's `base_model.model.` prefix.
 *
 * @throws PeanutError `E_BAD_SAFETENSORS` listing missing keys, unexpected keys (unless
 *   `allowExtra`) and wrong shapes.
 */
export function stateFromTensors(tensors: ReadonlyMap<string, SafeTensor>, params: readonly AdapterParam[], opts: StateFromTensorsOptions = {}): TweakerState {
  const what = opts.what ?? 'tweaker state';
  const byKey = new Map<string, [string, SafeTensor]>();
  for (const [k, t] of tensors) byKey.set(k.startsWith(PEFT_KEY_PREFIX) ? k.slice(PEFT_KEY_PREFIX.length) : k, [k, t]);
  const wanted = new Set(params.map((p) => p.name));
  const missing = params.filter((p) => !byKey.has(p.name)).map((p) => p.name);
  const extra = opts.allowExtra ? [] : [...byKey.keys()].filter((k) => !wanted.has(k));
  const badShape: string[] = [];
  const state: TweakerState = new Map();
  for (const p of params) {
    const hit = byKey.get(p.name);
    if (!hit) continue;
    const [key, t] = hit;
    if (t.shape.length !== 2 || t.shape[0] !== p.shape[0] || t.shape[1] !== p.shape[1]) {
      badShape.push(`${key} is [${t.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
      continue;
    }
    state.set(p.name, toFloat32(key, t, what));
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} key(s): ${listShort(missing)}`);
  if (extra.length) problems.push(`${extra.length} unexpected key(s): ${listShort(extra)}`);
  if (badShape.length) problems.push(`wrong shape: ${listShort(badShape, 4)}`);
  if (problems.length) throw new PeanutError('E_BAD_SAFETENSORS', `${what} does not match the adapter: ${problems.join('; ')}`);
  return state;
}

/** The state as safetensors tensors (F32, PEFT shapes). */
export function stateToTensors(state: TweakerState, params: readonly AdapterParam[]): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  for (const p of params) {
    const data = state.get(p.name);
    if (!data) throw new PeanutError('E_BAD_SAFETENSORS', `tweaker state has no '${p.name}'`);
    out.set(p.name, { dtype: 'F32', shape: [...p.shape], data });
  }
  return out;
}

/**
 * `__metadata__` for a tweaker file: the method configuration and the module -> (node, weight)
 * map, as JSON under `peanut_onnx.adapter`.
 */
export function tweakerFileMetadata(meta: AdapterMeta): Record<string, string> {
  return { format: 'peanut-onnx-tweaker', [ADAPTER_META_KEY]: JSON.stringify(summarizeAdapter(meta)) };
}

/** The adapter parameters stored as initializers of an adapted model. */
export function stateFromModel(model: OnnxModel, meta: AdapterMeta): TweakerState {
  const g = graphOf(model);
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const state: TweakerState = new Map();
  for (const p of meta.targets.flatMap((t) => t.params)) {
    const t = inits.get(p.name);
    if (!t) throw new PeanutError('E_NOT_ADAPTED', `adapted model has no initializer '${p.name}'; pass the parameters with --checkpoint`);
    const dims = tensorDims(t);
    if (dims[0] !== p.shape[0] || dims[1] !== p.shape[1]) {
      throw new PeanutError('E_SHAPE_MISMATCH', `initializer '${p.name}' is [${dims.join(', ')}], expected [${p.shape.join(', ')}]`);
    }
    state.set(p.name, tensorToFloat32(t, model.baseDir));
  }
  return state;
}
