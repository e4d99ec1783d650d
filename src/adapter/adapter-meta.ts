/**
 * The adapter record stored in an adapted model's `metadata_props` under `peanut_onnx.adapter`:
 * the method configuration and, per target, the layer, its weight and every name injection
 * added. Merge, training and export read it instead of guessing from names.
 */
import { PeanutError } from '../errors.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { create, StringStringEntryProtoSchema, type ModelProto } from '../onnx/proto.ts';
import type { MethodConfig } from './config.ts';
import { resolveMethodConfig } from './config.ts';
import { methodFor } from './methods/index.ts';
import type { LayerRef } from './layer.ts';
import { LINEAR_OPS } from './linear-ops.ts';

export const ADAPTER_META_KEY = 'peanut_onnx.adapter';
export const ADAPTER_META_VERSION = 1;

export interface AdapterParam {
  /** PEFT key, also the initializer name. */
  name: string;
  /** PEFT shape. */
  shape: [number, number];
}

/** One adapted layer: the layer (as discovery found it) and every name injection added. */
export interface AdapterTarget extends LayerRef {
  /** Value now fed to the layer in place of the weight (W = W0 + ΔW). */
  output: string;
  params: AdapterParam[];
  /** Names of the nodes injection added for this target. */
  nodes: string[];
  /** Names of the constant initializers injection added for this target. */
  constants: string[];
  /** Fingerprint of W0 at injection (`weightFingerprint`); absent in adapters from before fingerprints. */
  w0Hash?: string;
}

export interface AdapterMeta {
  version: number;
  config: MethodConfig;
  /** The `--targets` value used (or the architecture default). */
  targetModules: string;
  seed: number;
  targets: AdapterTarget[];
}

/** Every parameter key of an adapter, in target order. */
export function paramNames(meta: AdapterMeta): string[] {
  return meta.targets.flatMap((t) => t.params.map((p) => p.name));
}

/** The adapter record of a model, or undefined for a plain model. */
export function readAdapterMeta(model: OnnxModel | ModelProto): AdapterMeta | undefined {
  const proto = 'proto' in model ? model.proto : model;
  const entry = proto.metadataProps.find((e) => e.key === ADAPTER_META_KEY);
  if (!entry) return undefined;
  let meta: AdapterMeta;
  try {
    meta = JSON.parse(entry.value) as AdapterMeta;
  } catch {
    throw new PeanutError('E_NOT_ADAPTED', `the model's '${ADAPTER_META_KEY}' metadata is not valid JSON; was it edited by hand?`);
  }
  if (!meta || typeof meta !== 'object' || !Array.isArray(meta.targets) || !meta.config) {
    throw new PeanutError('E_NOT_ADAPTED', `the model's '${ADAPTER_META_KEY}' metadata is incomplete; was it edited by hand?`);
  }
  if (meta.version > ADAPTER_META_VERSION) {
    throw new PeanutError('E_NOT_ADAPTED', `the model was adapted by a newer peanut-onnx (adapter format ${meta.version}); upgrade to read it`);
  }
  return checkAdapterMeta(meta);
}

/**
 * Checks every field of an adapter record read from a file (types, and parameter names and shapes
 * against what the method gives each layer), so no later step meets a missing or mistyped field.
 *
 * @throws PeanutError E_NOT_ADAPTED naming the first bad field
 */
function checkAdapterMeta(meta: AdapterMeta): AdapterMeta {
  const bad = (where: string, why: string) => new PeanutError('E_NOT_ADAPTED', `the model's '${ADAPTER_META_KEY}' metadata is malformed (${where} ${why}); was it edited by hand? Inject again from the original model`);
  let config: MethodConfig;
  try {
    config = resolveMethodConfig(meta.config as unknown as Record<string, string | number>);
  } catch (err) {
    throw bad('config', (err as Error).message);
  }
  if (typeof meta.targetModules !== 'string') throw bad('targetModules', 'is not a string');
  const method = methodFor(config);
  const str = (v: unknown) => typeof v === 'string';
  const count = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
  meta.targets.forEach((t, i) => {
    const at = `targets[${i}]`;
    if (!t || typeof t !== 'object') throw bad(at, 'is not an object');
    for (const k of ['module', 'node', 'weight', 'nodeOutput', 'feedNode', 'feedOutput', 'output', 'dtype'] as const) if (!str(t[k])) throw bad(`${at}.${k}`, 'is not a string');
    for (const k of ['constantNode', 'transposeNode', 'w0Hash'] as const) if (t[k] !== undefined && !str(t[k])) throw bad(`${at}.${k}`, 'is not a string');
    const known = [...LINEAR_OPS.values()].filter((o) => !o.quantized).map((o) => o.opType);
    if (!known.includes(t.op)) throw bad(`${at}.op`, `is ${JSON.stringify(t.op)}, not one of ${known.join(', ')}`);
    if (t.weightSource !== 'initializer' && t.weightSource !== 'constant') throw bad(`${at}.weightSource`, 'is neither initializer nor constant');
    if (t.layout !== 'io' && t.layout !== 'oi') throw bad(`${at}.layout`, 'is neither io nor oi');
    if (typeof t.transB !== 'boolean') throw bad(`${at}.transB`, 'is not a boolean');
    for (const k of ['weightInput', 'feedInput', 'elemType'] as const) if (!count(t[k], 0)) throw bad(`${at}.${k}`, 'is not a count');
    for (const k of ['in', 'out'] as const) if (!count(t[k], 1)) throw bad(`${at}.${k}`, 'is not a positive integer');
    for (const k of ['nodes', 'constants'] as const) if (!Array.isArray(t[k]) || !t[k].every(str)) throw bad(`${at}.${k}`, 'is not a list of names');
    const specs = method.paramSpecs(config, { in: t.in, out: t.out });
    const params = t.params as unknown;
    const expected = specs.map((sp) => ({ name: `${t.module}.${sp.suffix}`, shape: sp.shape }));
    const same = Array.isArray(params) && params.length === expected.length && expected.every((e, j) => {
      const p = (params as Array<Partial<AdapterParam> | null>)[j];
      return !!p && p.name === e.name && Array.isArray(p.shape) && p.shape.length === 2 && p.shape[0] === e.shape[0] && p.shape[1] === e.shape[1];
    });
    if (!same) throw bad(`${at}.params`, `are not the ${config.method} parameters of a [${t.in}, ${t.out}] layer (${expected.map((e) => `${e.name} [${e.shape.join(', ')}]`).join(', ')})`);
  });
  return { ...meta, config };
}

/** Sets (or replaces) the adapter record on a model proto. */
export function writeAdapterMeta(proto: ModelProto, meta: AdapterMeta): void {
  const value = JSON.stringify(meta);
  proto.metadataProps = [...proto.metadataProps.filter((e) => e.key !== ADAPTER_META_KEY), create(StringStringEntryProtoSchema, { key: ADAPTER_META_KEY, value })];
}

/** Removes the adapter record from a model proto. */
export function removeAdapterMeta(proto: ModelProto): void {
  proto.metadataProps = proto.metadataProps.filter((e) => e.key !== ADAPTER_META_KEY);
}

/** One module as files outside the model record it. */
export interface ModuleSummary {
  in: number;
  out: number;
  node?: string;
  weight?: string;
  op?: string;
  /** `io` = stored [in, out]; `oi` = stored [out, in]. */
  layout?: 'io' | 'oi';
  /** Fingerprint of the base weight the parameters belong to (see adapter/fingerprint.ts). */
  w0Hash?: string;
}

/**
 * The adapter as tweaker files, checkpoints (metadata `peanut`) and manifests record it: enough
 * to rebuild every parameter's key and shape and to export the adapter, without the model.
 */
export interface AdapterSummary {
  version?: number;
  config: MethodConfig;
  targetModules: string;
  modules: Record<string, ModuleSummary>;
}

/** The summary of an adapter record. */
export function summarizeAdapter(meta: AdapterMeta): AdapterSummary {
  return {
    version: meta.version,
    config: meta.config,
    targetModules: meta.targetModules,
    modules: Object.fromEntries(meta.targets.map((t) => [t.module, { node: t.node, weight: t.weight, op: t.op, layout: t.layout, in: t.in, out: t.out, ...(t.w0Hash ? { w0Hash: t.w0Hash } : {}) }])),
  };
}

/**
 * Reads a summary back (from its JSON text or the parsed value); undefined when `value` is absent
 * or is not one.
 *
 * @throws PeanutError E_BAD_SAFETENSORS when the text is not JSON (`what` names its source).
 */
export function parseAdapterSummary(value: unknown, what: string): AdapterSummary | undefined {
  if (value === undefined) return undefined;
  let v = value;
  if (typeof value === 'string') {
    try {
      v = JSON.parse(value);
    } catch {
      throw new PeanutError('E_BAD_SAFETENSORS', `${what}: its adapter metadata is not valid JSON`);
    }
  }
  const o = v as Partial<AdapterSummary> | null;
  if (!o || typeof o !== 'object' || !o.config || !o.modules || typeof o.modules !== 'object') return undefined;
  const modules = Object.values(o.modules);
  if (modules.some((m) => !m || typeof m.in !== 'number' || typeof m.out !== 'number')) return undefined;
  return {
    config: resolveMethodConfig(o.config as unknown as Record<string, string | number>),
    targetModules: o.targetModules ?? Object.keys(o.modules).join(','),
    modules: o.modules,
  };
}
