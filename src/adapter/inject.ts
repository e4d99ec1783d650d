/**
 * Injection pass: adds an adapter to the selected layers of a model.
 *
 * Before:  W0 ──▶ MatMul/Gemm
 * After:   W0 ─(Cast)─▶ [ΔW subgraph of the method, reading θ initializers] ─▶ Add(W0, ΔW) ─(Cast)─▶ MatMul/Gemm
 *
 * Cases:
 *  1. MatMul, or Gemm transB=0: ΔW is computed in `[in, out]` layout.
 *  2. Gemm transB=1: ΔW is computed in `[out, in]` layout (the method's transposed form).
 *  5. Weight read through a 2-D Transpose: the adapter works on the stored `[out, in]` tensor and
 *     W feeds the Transpose, which stays in place.
 *  3. fp16/bf16 weight: W0 is cast to float32 and W back to the weight's type.
 *  4. Weight held by a Constant node: the Constant stays; its output feeds the subgraph.
 *  6. Any other weight-holding op (com.microsoft FusedMatMul, GemmFastGelu, the packed q/k/v
 *     weight of Attention; see linear-ops.ts): the same, on the op's weight input and layout.
 *  7. Parts of a packed weight (BERT's query/key/value column ranges of a fused q/k/v weight):
 *     W = Concat of the columns, each adapted part as Slice(W0) + ΔW(Slice(W0)), the others
 *     Slice(W0); one W per weight, fed to the layer once.
 *
 * The input model is not modified: the result shares its tensors but has its own node and
 * initializer lists. θ is stored as float32 initializers named by PEFT keys, and the
 * `peanut_onnx.adapter` metadata entry records every name added (see adapter-meta.ts).
 */
import { PeanutError } from '../errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { DataType as DT } from '../onnx/dtype.ts';
import { Graph } from '../onnx/graph.ts';
import { countParameters, defaultOpset, graphOf, type OnnxModel } from '../onnx/model.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../onnx/proto.ts';
import { floatTensor } from '../onnx/tensor.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import { Random } from '../util/random.ts';
import { ADAPTER_META_VERSION, readAdapterMeta, writeAdapterMeta, type AdapterMeta, type AdapterParam, type AdapterTarget } from './adapter-meta.ts';
import type { DetectedArchitecture } from './architectures.ts';
import { resolveMethodConfig, resolveSeed, type MethodConfig, type MethodOptions } from './config.ts';
import { methodFor, methodMarkers } from './methods/index.ts';
import { weightFingerprint } from './fingerprint.ts';
import { readTargetWeight } from './merge.ts';
import type { ParamSpec } from './methods/method.ts';
import { selectTargets } from './select.ts';
import { withFields } from './copy.ts';
import { stateFromTensors, type TweakerState } from './state.ts';
import { discoverTargets, type Candidate } from './targets.ts';

export interface InjectOptions extends MethodOptions {
  /** PEFT target_modules: suffix list, regex or `all-linear`; default: the architecture's. */
  targets?: string | readonly string[];
  /** Seed of the default initialisation. */
  seed?: number | string;
  /** Parameter values to start from (PEFT keys) instead of the default initialisation. */
  init?: ReadonlyMap<string, SafeTensor | Float32Array>;
  /** Name of the `init` source for messages (a file path). */
  initName?: string;
}

export interface InjectResult {
  /** The adapted model (shares tensors with the input model). */
  model: OnnxModel;
  /** The parameter values injected. */
  state: TweakerState;
  meta: AdapterMeta;
  /** The adapted layers. */
  targets: Candidate[];
  /** The architecture whose default targets were used, if any. */
  detected?: DetectedArchitecture;
}

/** PEFT default initialisation of one parameter: Kaiming-uniform (a = √5) or zeros. */
export function initParam(spec: ParamSpec, key: string, seed: number): Float32Array {
  const out = new Float32Array(spec.shape[0] * spec.shape[1]);
  if (spec.init === 'zeros') return out;
  // kaiming_uniform_(a=√5): gain = √(2/(1+5)), bound = gain·√3/√fan_in = 1/√fan_in; fan_in = size(1).
  const bound = 1 / Math.sqrt(spec.shape[1]);
  return Random.forKey(seed, key).fillUniform(out, -bound, bound);
}

/** Whether a model already carries an adapter (metadata, or parameter names of one). */
export function isAdapted(model: OnnxModel): boolean {
  if (readAdapterMeta(model)) return true;
  const markers = methodMarkers().map((m) => `.${m}`);
  return graphOf(model).initializer.some((t) => markers.some((m) => t.name.endsWith(m)));
}

function normaliseInit(init: ReadonlyMap<string, SafeTensor | Float32Array>, params: readonly AdapterParam[]): Map<string, SafeTensor> {
  const shapes = new Map(params.map((p) => [p.name, p.shape]));
  const out = new Map<string, SafeTensor>();
  for (const [k, v] of init) {
    if (v instanceof Float32Array) {
      const shape = shapes.get(k);
      out.set(k, { dtype: 'F32', shape: shape && shape[0] * shape[1] === v.length ? [...shape] : [v.length], data: v });
    } else out.set(k, v);
  }
  return out;
}

function copyForEdit(model: OnnxModel, nodeIndexes: ReadonlySet<number>): OnnxModel {
  const g = graphOf(model);
  const graph: GraphProto = withFields(g, {
    node: g.node.map((n, i) => (nodeIndexes.has(i) ? withFields(n, { input: [...n.input] }) : n)),
    initializer: [...g.initializer],
  });
  const proto: ModelProto = withFields(model.proto, { graph, metadataProps: [...model.proto.metadataProps] });
  return { proto, baseDir: model.baseDir };
}

/** The adapter record of one target: the layer as discovery found it and every name injection added. */
function recordOf(c: Candidate, params: AdapterParam[], output: string, nodes: readonly NodeProto[], constants: readonly TensorProto[]): AdapterTarget {
  return {
    module: c.module,
    node: c.node,
    op: c.op,
    ...(c.domain ? { domain: c.domain } : {}),
    weight: c.weight,
    weightInput: c.weightInput,
    weightSource: c.weightSource,
    ...(c.constantNode !== undefined ? { constantNode: c.constantNode } : {}),
    ...(c.transposeNode !== undefined ? { transposeNode: c.transposeNode } : {}),
    nodeOutput: c.nodeOutput,
    feedNode: c.feedNode,
    feedInput: c.feedInput,
    feedOutput: c.feedOutput,
    transB: c.transB,
    layout: c.layout,
    dtype: c.dtype,
    elemType: c.elemType,
    in: c.in,
    out: c.out,
    ...(c.columns ? { columns: c.columns } : {}),
    output,
    params,
    nodes: nodes.map((n) => n.name),
    constants: constants.map((t) => t.name),
  };
}

/** Adapters up to this many parameters are always allowed, whatever the model's size. */
const ALWAYS_ALLOWED_PARAMS = 2 ** 24;

/**
 * Refuses an adapter with more parameters than the model it adapts (and more than 2^24): that
 * is no parameter-efficient fine-tuning, and is how a mistyped rank or depth shows before
 * gigabytes are allocated.
 */
function checkAdapterSize(model: OnnxModel, params: readonly AdapterParam[], config: MethodConfig): void {
  const count = params.reduce((n, p) => n + p.shape[0] * p.shape[1], 0);
  if (count <= ALWAYS_ALLOWED_PARAMS) return;
  const base = countParameters(model);
  if (count > base) {
    const depth = config.method === 'peanut' ? ` and depth ${config.depth}` : '';
    throw new PeanutError('E_BAD_CONFIG', `rank ${config.r}${depth} would give the adapter ${count.toLocaleString('en-US')} parameters, more than the model itself (${base.toLocaleString('en-US')}); choose a smaller --rank${depth ? ' or --depth' : ''}`);
  }
}

/**
 * Adds an adapter (PEANuT by default) to a model.
 *
 * @param model - a plain model (not already adapted)
 * @param options - method configuration, targets, seed, optional initial values
 * @throws PeanutError `E_ALREADY_ADAPTED`, `E_BAD_CONFIG`, `E_NO_TARGETS`, `E_BAD_SAFETENSORS`
 */
export function inject(model: OnnxModel, options: InjectOptions = {}): InjectResult {
  const config: MethodConfig = resolveMethodConfig(options);
  const seed = resolveSeed(options.seed);
  if (isAdapted(model)) {
    throw new PeanutError('E_ALREADY_ADAPTED', 'the model is already adapted (it has tweaker parameters); merge it first or inject into the original model');
  }
  const opset = defaultOpset(model.proto);
  if (opset < 7) throw new PeanutError('E_BAD_CONFIG', `the model uses opset ${opset}; injection needs opset >= 7 (broadcasting Add/Mul)`);
  if (config.method === 'peanut' && config.act === 'gelu' && opset < 9) {
    throw new PeanutError('E_BAD_CONFIG', `--act gelu needs opset >= 9 (Erf); the model uses opset ${opset}: choose another activation`);
  }
  const method = methodFor(config);
  const discovery = discoverTargets(model);
  const selection = selectTargets(discovery, options.targets);
  const targets = selection.selected;

  const specs = targets.map((c) => method.paramSpecs(config, { in: c.in, out: c.out }));
  const params: AdapterParam[][] = targets.map((c, i) => specs[i]!.map((s) => ({ name: `${c.module}.${s.suffix}`, shape: s.shape })));
  const flat = params.flat();
  const flatSpecs = specs.flat();
  checkAdapterSize(model, flat, config);
  const state: TweakerState = options.init
    ? stateFromTensors(normaliseInit(options.init, flat), flat, { what: options.initName ?? '--init' })
    : new Map(flat.map((p, i) => [p.name, initParam(flatSpecs[i]!, p.name, seed)]));

  const adapted = copyForEdit(model, new Set(targets.map((c) => c.feedNodeIndex)));
  const proto = graphOf(adapted);
  const graph = new Graph(proto);
  const feedNodes: NodeProto[] = targets.map((c) => proto.node[c.feedNodeIndex]!);

  const addParams = (ti: number) => {
    for (const p of params[ti]!) {
      if (graph.uniqueName(p.name) !== p.name) {
        throw new PeanutError('E_ALREADY_ADAPTED', `the model already has a value named '${p.name}'; is it already adapted?`);
      }
      graph.addInitializer(floatTensor(p.name, p.shape, state.get(p.name)!));
    }
  };
  const byKeyOf = (ti: number) => new Map(specs[ti]!.map((s, i) => [s.suffix, params[ti]![i]!.name]));
  const records = new Map<number, AdapterTarget>();

  /** A whole weight: W = W0 + ΔW feeds the layer. */
  const emitWhole = (ti: number) => {
    const c = targets[ti]!;
    const node = feedNodes[ti]!;
    addParams(ti);
    const before = new Set(proto.initializer);
    const b = new GraphBuilder(graph, `/peanut_onnx/${c.module}`, node);
    const float = c.elemType === DT.FLOAT;
    const w0 = float ? c.weight : b.op('Cast', [c.weight], { to: DT.FLOAT });
    const delta = method.emitDelta(b, config, w0, byKeyOf(ti), c.layout, { in: c.in, out: c.out });
    const wName = graph.uniqueName(`/peanut_onnx/${c.module}/W`);
    const sum = b.op('Add', [w0, delta], {}, float ? { outputs: [wName] } : {});
    const w = float ? sum : b.op('Cast', [sum], { to: c.elemType }, { outputs: [wName] });
    node.input[c.feedInput] = w;
    records.set(ti, recordOf(c, params[ti]!, w, b.emitted, proto.initializer.filter((t) => !before.has(t))));
  };

  /**
   * The parts of one packed weight (column ranges, in order): W = Concat(W0 parts, each adapted
   * part + its ΔW), so every part's tweaker sees its own W0 and the other columns stay W0.
   */
  const emitParts = (group: number[]) => {
    const first = targets[group[0]!]!;
    const node = feedNodes[group[0]!]!;
    for (const ti of group) addParams(ti);
    const groupBefore = new Set(proto.initializer);
    const shared = new GraphBuilder(graph, `/peanut_onnx/${first.module}`, node);
    const float = first.elemType === DT.FLOAT;
    const w0 = float ? first.weight : shared.op('Cast', [first.weight], { to: DT.FLOAT });
    const columns = (b: GraphBuilder, [start, end]: [number, number]) =>
      opset >= 10 ? b.op('Slice', [w0, b.constInt64([start]), b.constInt64([end]), b.constInt64([1])]) : b.op('Slice', [w0], { starts: [start], ends: [end], axes: [1] });
    const parts: string[] = [];
    const own = new Map<number, { nodes: NodeProto[]; constants: Set<TensorProto> }>();
    let cursor = 0;
    for (const ti of group) {
      const c = targets[ti]!;
      const [start, end] = c.columns!;
      if (start > cursor) parts.push(columns(shared, [cursor, start]));
      const before = new Set(proto.initializer);
      const b = new GraphBuilder(graph, `/peanut_onnx/${c.module}`, node);
      const w0Part = columns(b, [start, end]);
      const delta = method.emitDelta(b, config, w0Part, byKeyOf(ti), 'io', { in: c.in, out: c.out });
      parts.push(b.op('Add', [w0Part, delta]));
      own.set(ti, { nodes: b.emitted, constants: new Set(proto.initializer.filter((t) => !before.has(t))) });
      cursor = end;
    }
    if (cursor < first.storedShape[1]) parts.push(columns(shared, [cursor, first.storedShape[1]]));
    const wName = graph.uniqueName(`/peanut_onnx/${first.module}/W`);
    const cat = shared.op('Concat', parts, { axis: 1 }, float ? { outputs: [wName] } : {});
    const w = float ? cat : shared.op('Cast', [cat], { to: first.elemType }, { outputs: [wName] });
    node.input[first.feedInput] = w;
    const taken = new Set([...own.values()].flatMap((o) => [...o.constants]));
    const sharedConstants = proto.initializer.filter((t) => !groupBefore.has(t) && !taken.has(t));
    // The shared nodes (W0 cast, untouched columns, Concat) belong to the first part's record.
    for (const ti of group) {
      const o = own.get(ti)!;
      const mine = ti === group[0] ? [...shared.emitted, ...o.nodes] : o.nodes;
      const consts = ti === group[0] ? [...sharedConstants, ...o.constants] : [...o.constants];
      records.set(ti, recordOf(targets[ti]!, params[ti]!, w, mine, consts));
    }
  };

  const groups = new Map<string, number[]>();
  targets.forEach((c, ti) => {
    if (!c.columns) return;
    const key = `${c.feedNodeIndex}:${c.feedInput}`;
    groups.set(key, [...(groups.get(key) ?? []), ti]);
  });
  targets.forEach((c, ti) => {
    if (records.has(ti)) return;
    if (!c.columns) return emitWhole(ti);
    emitParts(groups.get(`${c.feedNodeIndex}:${c.feedInput}`)!.sort((a, b) => targets[a]!.columns![0] - targets[b]!.columns![0]));
  });
  graph.invalidate();

  // Each target's W0 fingerprint (its whole stored weight), so merge and resume can tell it later.
  for (const record of records.values()) record.w0Hash = weightFingerprint(readTargetWeight(model, record), record);
  const meta: AdapterMeta = { version: ADAPTER_META_VERSION, config, targetModules: selection.targetModules, seed, targets: targets.map((_, ti) => records.get(ti)!) };
  writeAdapterMeta(adapted.proto, meta);
  return { model: adapted, state, meta, targets, ...(selection.detected ? { detected: selection.detected } : {}) };
}
