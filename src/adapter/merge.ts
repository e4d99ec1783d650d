/**
 * Merge pass: folds each adapter into its layer's weight and removes the adapter.
 *
 * Before:  W0 ─▶ [ΔW subgraph, θ] ─▶ Add ─▶ MatMul/Gemm
 * After:   W0 + ΔW ─▶ MatMul/Gemm         (the original graph, node for node)
 *
 * ΔW is computed in float32 (also for fp16/bf16 weights, which are cast back), by the method's
 * JS form of the same math the adapted model runs. Everything injection added (nodes, θ and
 * constant initializers, the metadata entry) is removed by the names the metadata recorded, so
 * nodes, graph inputs/outputs and initializer names come out exactly as in the original; only the
 * target weights' values differ. The input model is not modified.
 */
import { PeanutError } from '../errors.ts';
import { DataType as DT, float32ToBytes } from '../onnx/dtype.ts';
import { graphOf, type OnnxModel } from '../onnx/model.ts';
import { type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.ts';
import { deferTensorBytes, tensorDims, tensorToFloat32 } from '../onnx/tensor.ts';
import { readAdapterMeta, removeAdapterMeta, type AdapterMeta, type AdapterTarget } from './adapter-meta.ts';
import { methodFor } from './methods/index.ts';
import { transpose } from './linalg.ts';
import { stateFromModel, type TweakerState } from './state.ts';
import { withFields } from './copy.ts';
import { checkTargetWeight } from './fingerprint.ts';

export interface MergeOptions {
  /** Parameter values to merge (PEFT keys); default: the adapted model's own initializers. */
  params?: ReadonlyMap<string, Float32Array>;
  /** Refuse to produce a weight containing NaN or Inf. */
  safe?: boolean;
  /**
   * Compute each merged initializer weight only when its bytes are read (see
   * `deferTensorBytes`): `saveModel` then writes one merged weight at a time and lets it go, so
   * merging a large model holds one weight, not all targets, in memory. The adapted model's files
   * (its external data, or the model file itself when it was loaded lazily) must still be there
   * when the result is saved. Errors of a weight (`--safe`) surface during the save, which then
   * writes nothing.
   */
  stream?: boolean;
}

/** The adapter record of a model, or `E_NOT_ADAPTED`. */
export function requireAdapter(model: OnnxModel): AdapterMeta {
  const meta = readAdapterMeta(model);
  if (!meta || meta.targets.length === 0) {
    throw new PeanutError('E_NOT_ADAPTED', `${model.path ?? 'the model'} has no tweakers (no '${'peanut_onnx.adapter'}' metadata): nothing to merge; pass a model written by 'peanut-onnx inject'`);
  }
  return meta;
}

function checkParams(meta: AdapterMeta, params: ReadonlyMap<string, Float32Array>): TweakerState {
  const missing: string[] = [];
  const wrong: string[] = [];
  const state: TweakerState = new Map();
  for (const p of meta.targets.flatMap((t) => t.params)) {
    const v = params.get(p.name);
    if (!v) missing.push(p.name);
    else if (v.length !== p.shape[0] * p.shape[1]) wrong.push(`${p.name} has ${v.length} values, expected [${p.shape.join(', ')}]`);
    else state.set(p.name, v);
  }
  if (missing.length || wrong.length) {
    const parts = [missing.length ? `missing ${missing.join(', ')}` : '', wrong.join('; ')].filter(Boolean);
    throw new PeanutError('E_BAD_SAFETENSORS', `parameters do not match the adapter: ${parts.join('; ')}`);
  }
  return state;
}

function weightTensorOf(graph: GraphProto, t: AdapterTarget): { tensor: TensorProto; constant?: NodeProto } {
  if (t.weightSource === 'constant') {
    const node = graph.node.find((n) => n.opType === 'Constant' && n.output[0] === t.weight);
    const tensor = node?.attribute.find((a) => a.name === 'value')?.t;
    if (!node || !tensor) throw new PeanutError('E_GRAPH', `adapted model has no Constant producing '${t.weight}' for ${t.module}`);
    return { tensor, constant: node };
  }
  const tensor = graph.initializer.find((x) => x.name === t.weight);
  if (!tensor) throw new PeanutError('E_GRAPH', `adapted model has no weight initializer '${t.weight}' for ${t.module}`);
  return { tensor };
}

/**
 * A target's stored weight (W0) as float32, in its stored layout, checked against the
 * fingerprint recorded at injection.
 *
 * @throws PeanutError E_BASE_MISMATCH when the weight was changed since injection
 */
export function readTargetWeight(adapted: OnnxModel, target: AdapterTarget): Float32Array {
  const w0 = tensorToFloat32(weightTensorOf(graphOf(adapted), target).tensor, adapted.baseDir);
  checkTargetWeight(target, w0, adapted.path ?? 'the adapted model');
  return w0;
}

function withValues(t: TensorProto, bytes: Uint8Array): TensorProto {
  const next = withFields(t, {
    rawData: bytes as Uint8Array<ArrayBuffer>,
    floatData: [],
    doubleData: [],
    int32Data: [],
    int64Data: [],
    uint64Data: [],
    externalData: [],
  });
  // Back to the prototype's default (unset) rather than an explicit DEFAULT, which proto2 would encode.
  if (Object.hasOwn(next, 'dataLocation')) Reflect.deleteProperty(next, 'dataLocation');
  return next;
}

/**
 * W0 + ΔW for one target, float32, in the weight's stored layout (for a part of a packed
 * weight, the whole weight with the part's columns changed).
 *
 * @param w0 - the stored weight as float32, in the target's layout
 */
export function mergedWeight(meta: AdapterMeta, target: AdapterTarget, w0: Float32Array, state: ReadonlyMap<string, Float32Array>): Float32Array {
  return mergedWeightOf(meta, target, w0, state, false);
}

/** `mergedWeight`; with `owned` the caller hands `w0` over, and an `[in, out]` result is computed in it. */
function mergedWeightOf(meta: AdapterMeta, target: AdapterTarget, w0: Float32Array, state: ReadonlyMap<string, Float32Array>, owned: boolean): Float32Array {
  const method = methodFor(meta.config);
  const layer = { in: target.in, out: target.out };
  const suffix = (name: string) => name.slice(target.module.length + 1);
  const params = new Map(target.params.map((p) => [suffix(p.name), state.get(p.name)!]));
  if (target.columns) {
    // A part of a packed [in, total] weight: ΔW of its columns, added in place.
    const [start, end] = target.columns;
    const total = w0.length / target.in;
    const part = new Float32Array(target.in * target.out);
    for (let i = 0; i < target.in; i++) part.set(w0.subarray(i * total + start, i * total + end), i * target.out);
    const merged = method.computeDelta(meta.config, part, params, layer, part);
    const out = owned ? w0 : w0.slice();
    for (let i = 0; i < target.in; i++) out.set(merged.subarray(i * target.out, (i + 1) * target.out), i * total + start);
    return out;
  }
  const oi = target.layout === 'oi';
  const io = oi ? transpose(w0, target.out, target.in) : owned ? w0 : w0.slice();
  const merged = method.computeDelta(meta.config, io, params, layer, io);
  return oi ? transpose(merged, target.in, target.out) : merged;
}

/**
 * W0 + ΔW for one target, in its stored layout; `readW0` gives the stored weight as float32 (a
 * fresh array each call, the function's to change; for the next part of a packed weight, the
 * previous part's result). The returned array is handed over: a float32 weight keeps it as its
 * bytes, so it must not be changed or reused afterwards.
 */
export type MergedWeightFn = (target: AdapterTarget, readW0: () => Float32Array) => Float32Array;

/**
 * Folds an adapted model's tweakers into its weights.
 *
 * @param adapted - a model written by `inject`
 * @param opts - parameter values (e.g. from a checkpoint) and the NaN/Inf guard
 * @returns the merged model (shares untouched tensors with `adapted`)
 * @throws PeanutError `E_NOT_ADAPTED`, `E_BAD_SAFETENSORS`, `E_NON_FINITE`, `E_GRAPH`
 */
export function merge(adapted: OnnxModel, opts: MergeOptions = {}): OnnxModel {
  const meta = requireAdapter(adapted);
  const state = mergeState(adapted, meta, opts);
  return rebuildMerged(adapted, meta, (t, readW0) => mergedWeightOf(meta, t, readW0(), state, true), opts.safe ?? false, opts.stream ?? false);
}

/**
 * Whether parameter values give ΔW = 0 on every target: each method's factor that starts at zero
 * (PEFT's `init_weights=True`: PEANuT's and LoRA's B) is still all zeros, as in a model that was
 * injected but never trained. Merging such values gives back the original weights.
 */
export function isZeroDelta(meta: AdapterMeta, state: ReadonlyMap<string, Float32Array>): boolean {
  const method = methodFor(meta.config);
  return meta.targets.every((t) =>
    method
      .paramSpecs(meta.config, { in: t.in, out: t.out })
      .filter((s) => s.init === 'zeros')
      .every((s) => state.get(`${t.module}.${s.suffix}`)?.every((v) => v === 0) ?? false),
  );
}

/** The parameter values a merge uses: `opts.params` (checked) or the model's initializers. */
export function mergeState(adapted: OnnxModel, meta: AdapterMeta, opts: MergeOptions): TweakerState {
  return opts.params ? checkParams(meta, opts.params) : stateFromModel(adapted, meta);
}

/** Index of the first NaN or ±Inf in `a`, or -1 (a plain loop: `findIndex` with a callback is ~5× slower on typed arrays). */
function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/**
 * The merged model, given each target's merged weight: writes the weights, removes everything
 * injection recorded, points the feeding nodes back at the weights and drops the metadata entry.
 */
export function rebuildMerged(adapted: OnnxModel, meta: AdapterMeta, weightFor: MergedWeightFn, safe: boolean, stream = false): OnnxModel {
  const g = graphOf(adapted);
  const dropNodes = new Set(meta.targets.flatMap((t) => t.nodes));
  const dropInits = new Set(meta.targets.flatMap((t) => [...t.params.map((p) => p.name), ...t.constants]));
  const newInits = new Map<string, TensorProto>();
  const newConstants = new Map<NodeProto, NodeProto>();
  const layerInputs = new Map<string, AdapterTarget>();

  // The targets of each stored weight (several for the parts of a packed weight), each merged
  // into the result of the one before.
  const byWeight = new Map<string, AdapterTarget[]>();
  for (const t of meta.targets) byWeight.set(`${t.weightSource}:${t.weight}`, [...(byWeight.get(`${t.weightSource}:${t.weight}`) ?? []), t]);
  for (const group of byWeight.values()) {
    const t = group[0]!;
    const { tensor, constant } = weightTensorOf(g, t);
    const size = tensorDims(tensor).reduce((a, b) => a * b, 1);
    const bytesOf = (): Uint8Array => {
      // W0 as stored, checked against each part's fingerprint of it (recorded at injection).
      let readW0 = () => {
        const w0 = tensorToFloat32(tensor, adapted.baseDir);
        for (const part of group) checkTargetWeight(part, w0, adapted.path ?? 'the adapted model');
        return w0;
      };
      let merged!: Float32Array;
      for (const part of group) {
        const w = weightFor(part, readW0);
        merged = w;
        readW0 = () => w;
      }
      if (merged.length !== size) throw new PeanutError('E_GRAPH', `merged weight of ${t.module} has ${merged.length} values, expected ${size}`);
      if (safe) {
        const bad = firstNonFinite(merged);
        if (bad >= 0) throw new PeanutError('E_NON_FINITE', `merged weight of ${group.map((x) => x.module).join(', ')} ('${t.weight}') has a non-finite value (${merged[bad]}); refusing to write it (--safe)`);
      }
      // float32: the merged array is handed over (see MergedWeightFn) and becomes the bytes as is.
      return tensor.dataType === DT.FLOAT ? new Uint8Array(merged.buffer, merged.byteOffset, merged.byteLength) : float32ToBytes(merged, tensor.dataType);
    };
    let next: TensorProto;
    if (stream && !constant) {
      next = withValues(tensor, new Uint8Array(0));
      deferTensorBytes(next, bytesOf);
    } else next = withValues(tensor, bytesOf());
    if (constant) {
      const attribute: AttributeProto[] = constant.attribute.map((a) => (a.name === 'value' ? withFields(a, { t: next }) : a));
      newConstants.set(constant, withFields(constant, { attribute }));
    } else newInits.set(t.weight, next);
    for (const part of group) layerInputs.set(part.feedOutput, part);
  }

  const node = g.node
    .filter((n) => !dropNodes.has(n.name))
    .map((n) => {
      const c = newConstants.get(n);
      if (c) return c;
      const t = layerInputs.get(n.output[0] ?? '');
      if (!t) return n;
      if (n.input[t.feedInput] !== t.output) {
        throw new PeanutError('E_GRAPH', `node '${n.name}' no longer reads '${t.output}'; the adapted model was edited after injection`);
      }
      const input = [...n.input];
      input[t.feedInput] = t.weight;
      return withFields(n, { input });
    });
  const initializer = g.initializer.filter((t) => !dropInits.has(t.name)).map((t) => newInits.get(t.name) ?? t);

  const removed = new Set([...dropInits, ...meta.targets.flatMap((t) => t.output)]);
  for (const n of node) {
    const dangling = n.input.find((i) => removed.has(i));
    if (dangling) throw new PeanutError('E_GRAPH', `node '${n.name}' reads '${dangling}', which merge removes; the adapted model was edited after injection`);
  }

  const graph: GraphProto = withFields(g, { node, initializer });
  const proto: ModelProto = withFields(adapted.proto, { graph, metadataProps: [...adapted.proto.metadataProps] });
  removeAdapterMeta(proto);
  return { proto, baseDir: adapted.baseDir };
}
