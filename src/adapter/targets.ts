/**
 * Target discovery: which linear layers can carry a tweaker, and why the others cannot.
 *
 * Each weight-holding node (MatMul, Gemm, com.microsoft FusedMatMul/GemmFastGelu/Attention, and
 * the quantized ops; see linear-ops.ts) goes through pattern -> check: the pattern is "layer
 * with its weight in the op's weight input"; the checks return a reason when a layer is not a
 * candidate (weight computed at run time, rank ≠ 2, integer or quantized, shared with another
 * node, inside a control-flow subgraph, …), which `inspect` shows. Candidates get an `[in, out]`
 * shape in the layer's own semantics (a Gemm/FusedMatMul with transB=1, or a weight read through
 * a Transpose, is stored `[out, in]`) and a module path: from the node or weight name where they
 * carry one (module-path.ts), else from the graph structure where the layer sits in a
 * recognised attention block or MLP (structure.ts, structural-names.ts), else the sanitised
 * node name. Discovery also detects the architecture (architectures.ts), the output heads and
 * which graph outputs each candidate reaches (heads.ts).
 */
import { PeanutError } from '../errors.ts';
import { attrInts } from '../onnx/attributes.ts';
import { DataType as DT, dtypeName } from '../onnx/dtype.ts';
import { Graph } from '../onnx/graph.ts';
import { defaultOpset, graphOf, type OnnxModel } from '../onnx/model.ts';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto.ts';
import { tensorDims } from '../onnx/tensor.ts';
import { fallbackModulePath, namedModulePath, uniquifyModulePaths, type NameSource } from './module-path.ts';
import { readAdapterMeta } from './adapter-meta.ts';
import { detectArchitecture, detectFromStructure, refineWithStructure, type DetectedArchitecture } from './architectures.ts';
import { graphFacts } from './graph-facts.ts';
import { isHeadName, outputHeads, outputsReached } from './heads.ts';
import { linearOpOf, opLabel, type LinearOpSpec } from './linear-ops.ts';
import { namingConvention, type NamingConvention } from './structural-names.ts';
import { analyseStructure, type StructuralRole, type StructureSummary } from './structure.ts';

import type { LayerRef, LinearOp } from './layer.ts';
import { compileSafeRegex, type SafeRegex } from '../util/safe-regex.ts';

export type { LayerRef, LinearOp };

/** How a module path was derived. */
export interface ModuleNaming {
  /**
   * `node-name` (a scoped node name), `weight-name` (`<module>.weight`), `structure` (the
   * layer's place in a recognised block; `detail` says which pattern), or `fallback` (the
   * sanitised node name: neither names nor structure gave a module path).
   */
  from: NameSource | 'structure' | 'fallback';
  /** For `structure`: the recognised pattern (`Q·Kᵀ → Softmax → ·V`, `Attention (com.microsoft)`, `MLP fc1 → Erf → fc2`). */
  pattern?: string;
  /** For `structure`: whose module names were used (`bert`, `gpt2`, `llama`, `encoder-decoder`, `neutral`). */
  convention?: string;
  /** For `structure`: the layer, role and the nodes that show it. */
  detail?: string;
}

/** A layer that can be adapted. */
export interface Candidate extends LayerRef {
  /** Index of the node in the main graph. */
  nodeIndex: number;
  feedNodeIndex: number;
  /** The weight's stored dims. */
  storedShape: [number, number];
  /** The model's output head (excluded by `all-linear`). */
  isHead: boolean;
  /** How `module` was derived. */
  naming: ModuleNaming;
  /** The layer's place in the recognised structure, if it has one. */
  structure?: StructuralRole;
  /** The graph outputs the layer's output reaches (a loss on another output cannot train it). */
  reaches: string[];
}

/** A linear layer that is not a candidate, and why. */
export interface Skipped {
  node: string;
  op: string;
  module?: string;
  reason: string;
}

export interface Discovery {
  candidates: Candidate[];
  skipped: Skipped[];
  /** The architecture recognised from module names or graph structure, if any. */
  architecture?: DetectedArchitecture;
  /** What the structural analysis recognised. */
  structure?: StructureSummary;
}

const ADAPTABLE_TYPES = new Set<number>([DT.FLOAT, DT.FLOAT16, DT.BFLOAT16]);

type Check = { ok: true; weight: Omit<Candidate, 'module' | 'isHead' | 'naming' | 'reaches'> } | { ok: false; reason: string };

interface FoundWeight {
  /** Name of the stored value. */
  name: string;
  tensor?: TensorProto;
  constantNode?: NodeProto;
  transposeNode?: NodeProto;
  reason?: string;
}

const isDefaultDomain = (n: NodeProto) => n.domain === '' || n.domain === 'ai.onnx';

/**
 * The weight tensor behind `name`: an initializer, a Constant node's `value`, or either of
 * those through a 2-D Transpose (as some exporters emit for `nn.Linear`).
 */
function weightTensor(g: Graph, name: string, throughTranspose = true): FoundWeight {
  const init = g.initializer(name);
  if (init) return { name, tensor: init };
  const producer = g.producer(name);
  if (producer && producer.opType === 'Constant' && isDefaultDomain(producer)) {
    const value = producer.attribute.find((a) => a.name === 'value');
    if (value?.t) return { name, tensor: value.t, constantNode: producer };
    const other = producer.attribute[0]?.name ?? 'no value';
    return { name, reason: `weight '${name}' is a Constant with '${other}' (rank < 2 or sparse); only a 2-D 'value' tensor can be adapted` };
  }
  if (producer && throughTranspose && producer.opType === 'Transpose' && isDefaultDomain(producer) && producer.input[0]) {
    const perm = attrInts(producer, 'perm');
    const inner = weightTensor(g, producer.input[0], false);
    const rank2 = inner.tensor ? tensorDims(inner.tensor).length === 2 : false;
    if (inner.tensor && rank2 && (!perm || (perm[0] === 1 && perm[1] === 0))) {
      const others = g.consumers(inner.name).filter((n) => n !== producer);
      if (others.length === 0) return { ...inner, transposeNode: producer };
      return { name, reason: `weight '${inner.name}' (through Transpose '${producer.name}') is also read by ${others.length} other node(s) (e.g. ${others[0]!.opType} '${others[0]!.name}'); adapting it would change them too` };
    }
  }
  if (producer?.opType === 'DequantizeLinear') {
    return { name, reason: `weight '${name}' is dequantized at run time (DequantizeLinear '${producer.name}'); quantized weights cannot be adapted; adapt the float model, merge, then quantize` };
  }
  if (producer) return { name, reason: `weight '${name}' is computed at run time (by ${producer.opType} node '${producer.name}'), not stored in the model` };
  if (g.isInput(name)) return { name, reason: `weight '${name}' is a graph input, not stored in the model` };
  return { name, reason: `weight '${name}' is not defined in this graph (outer-scope or missing value)` };
}

/** Pattern + checks for one weight-holding node of the main graph. */
function checkLayer(g: Graph, node: NodeProto, index: number, opset: number, spec: LinearOpSpec): Check {
  const op = node.opType as LinearOp;
  if (spec.quantized) return { ok: false, reason: `weights are ${spec.quantized}` };
  const refusal = spec.refuse?.(node);
  if (refusal) return { ok: false, reason: refusal };
  const weight = node.input[spec.weightInput];
  if (!weight) return { ok: false, reason: spec.weightInput === 1 ? 'node has no second input' : `node has no weight input (input ${spec.weightInput})` };
  const found = weightTensor(g, weight);
  if (!found.tensor) return { ok: false, reason: found.reason! };
  const t = found.tensor;
  const stored = found.name;
  if (!ADAPTABLE_TYPES.has(t.dataType)) {
    return { ok: false, reason: `weight '${stored}' is ${dtypeName(t.dataType)}; only float32, float16 and bfloat16 weights can be adapted` };
  }
  if (t.dataType === DT.BFLOAT16 && opset < 13) {
    return { ok: false, reason: `weight '${stored}' is bfloat16, which needs opset >= 13 to cast (the model has opset ${opset})` };
  }
  const dims = tensorDims(t);
  if (dims.length !== 2) return { ok: false, reason: `weight '${stored}' has rank ${dims.length} ([${dims.join(', ')}]); a linear layer's weight has rank 2` };
  if (dims[0] === 0 || dims[1] === 0) return { ok: false, reason: `weight '${stored}' is empty ([${dims.join(', ')}])` };
  const readers = g.consumers(weight).filter((n) => n !== node);
  if (readers.length > 0) {
    return { ok: false, reason: `weight '${weight}' is also read by ${readers.length} other node(s) (e.g. ${readers[0]!.opType} '${readers[0]!.name}'); adapting it would change them too` };
  }
  if (g.isOutput(weight) || g.isOutput(stored)) return { ok: false, reason: `weight '${weight}' is also a graph output` };
  if (node.input.some((x, i) => i !== spec.weightInput && x === weight)) return { ok: false, reason: `${op} reads the weight as both inputs` };
  const transB = spec.transposesWeight(node);
  const layout = transB !== !!found.transposeNode ? 'oi' : 'io';
  const feed = found.transposeNode ?? node;
  const [d0, d1] = dims as [number, number];
  return {
    ok: true,
    weight: {
      node: node.name,
      nodeIndex: index,
      op,
      ...(spec.domain ? { domain: spec.domain } : {}),
      weight: stored,
      weightInput: spec.weightInput,
      weightSource: found.constantNode ? 'constant' : 'initializer',
      ...(found.constantNode ? { constantNode: found.constantNode.name } : {}),
      ...(found.transposeNode ? { transposeNode: found.transposeNode.name } : {}),
      nodeOutput: node.output[0] ?? '',
      feedNode: feed.name,
      feedOutput: feed.output[0] ?? '',
      feedNodeIndex: g.nodes.indexOf(feed),
      feedInput: found.transposeNode ? 0 : spec.weightInput,
      transB,
      layout,
      elemType: t.dataType,
      dtype: dtypeName(t.dataType),
      storedShape: [d0, d1],
      in: layout === 'oi' ? d1 : d0,
      out: layout === 'oi' ? d0 : d1,
    },
  };
}

/** Weight-holding nodes inside control-flow subgraphs, with the path of the enclosing node. */
function nestedLinears(g: GraphProto, where: string, out: Skipped[]): void {
  for (const n of g.node) {
    for (const a of n.attribute) {
      const graphs = a.g ? [a.g] : a.graphs;
      for (const sg of graphs) {
        const here = `${where}${n.opType} '${n.name}' (${a.name})`;
        for (const inner of sg.node) {
          if (linearOpOf(inner)) {
            out.push({
              node: inner.name,
              op: inner.opType,
              reason: `inside the ${here} subgraph; layers in control-flow subgraphs (If/Loop/Scan) are not adapted`,
            });
          }
        }
        nestedLinears(sg, `${here} > `, out);
      }
    }
  }
}

/**
 * Finds every adaptable layer of a model and every weight-holding node that is not one, with
 * the reason; names the layers, detects the architecture and the output heads.
 *
 * @param model - the model (only tensor dims and types are read, never tensor bytes)
 */
export function discoverTargets(model: OnnxModel): Discovery {
  const proto = graphOf(model);
  const g = new Graph(proto);
  const facts = graphFacts(g);
  const opset = defaultOpset(model.proto);
  // In an adapted model the tweaker's own MatMuls are not layers, and the adapted layers are taken.
  const meta = readAdapterMeta(model);
  const tweakerNodes = new Set(meta?.targets.flatMap((t) => t.nodes) ?? []);
  const adaptedLayers = new Map(meta?.targets.map((t) => [t.nodeOutput, t.module]) ?? []);

  type Layer = { node: NodeProto; check: Check; module: string; naming: ModuleNaming; taken?: string };
  const layers: Layer[] = [];
  proto.node.forEach((node, index) => {
    const spec = linearOpOf(node);
    if (!spec || tweakerNodes.has(node.name)) return;
    const taken = adaptedLayers.get(node.output[0] ?? '');
    const check: Check = taken !== undefined ? { ok: false, reason: `already adapted (${meta!.config.method}); merge the model first to adapt it again` } : checkLayer(g, node, index, opset, spec);
    // The stored weight's name (not a Transpose output) can name the module: `<module>.weight`.
    const named = namedModulePath(node.name, check.ok ? check.weight.weight : node.input[spec.weightInput], node.opType);
    const module = taken ?? named?.module ?? fallbackModulePath(node.name, `${node.opType.toLowerCase()}_${index}`);
    layers.push({ node, check, module, naming: { from: taken !== undefined ? 'node-name' : (named?.from ?? 'fallback') }, ...(taken !== undefined ? { taken } : {}) });
  });

  // The architecture from the names' module paths (as they would be named without structure),
  // else from the graph structure.
  const structure = analyseStructure(facts);
  const byNames = layers.filter((l) => l.check.ok).map((l) => ({ module: l.module, node: l.node.name, op: l.node.opType }));
  uniquifyModulePaths(byNames);
  const nodeNames = [...proto.node.map((n) => n.name), ...proto.initializer.map((t) => t.name)].filter(Boolean);
  const fromNames = detectArchitecture(byNames.map((c) => c.module));
  const architecture = fromNames ? refineWithStructure(fromNames, structure.summary) : detectFromStructure(structure.summary, nodeNames);

  // Layers whose names carry no module path are named by their place in the structure.
  const convention = namingConvention(
    architecture,
    layers.filter((l) => l.naming.from !== 'fallback').map((l) => l.module),
  );
  for (const l of layers) {
    const role = structure.roles.get(l.node);
    if (l.naming.from !== 'fallback' || !role) continue;
    l.module = convention.name(role);
    const where = role.stack ? `${role.stack} layer ${role.index}` : `layer ${role.index}`;
    l.naming = { from: 'structure', pattern: role.via, convention: convention.id, detail: `${where} in residual-stream order, ${role.block.replace('_', '-')} ${role.role}: ${role.pattern}` };
  }

  const candidates: Candidate[] = [];
  const skipped: Skipped[] = [];
  for (const l of layers) {
    const check = l.check;
    if (check.ok) {
      const role = structure.roles.get(l.node);
      const parts = l.naming.from === 'structure' && role ? packedParts(l.node, check.weight, role, convention) : undefined;
      if (parts) candidates.push(...parts.map((p) => ({ ...check.weight, ...p, isHead: false, reaches: [] })));
      else candidates.push({ ...check.weight, module: l.module, isHead: false, naming: l.naming, ...(role ? { structure: role } : {}), reaches: [] });
    } else {
      const product = structure.products.get(l.node);
      const reason = product ? `the attention product ${product}, no linear layer: ${check.reason}` : check.reason;
      skipped.push({ node: l.node.name, op: opLabel(l.node), module: l.module, reason });
    }
  }
  uniquifyModulePaths(candidates);

  // Several candidates share a node when they are parts of one packed weight.
  const candidateNodes = new Map<NodeProto, Candidate[]>();
  for (const c of candidates) {
    const node = proto.node[c.nodeIndex]!;
    candidateNodes.set(node, [...(candidateNodes.get(node) ?? []), c]);
  }
  const heads = outputHeads(facts, (n) => candidateNodes.has(n));
  const reach = outputsReached(facts, [...candidateNodes.keys()]);
  for (const [node, cs] of candidateNodes) {
    for (const c of cs) {
      // A layer inside a recognised block is never the head, even if it reaches an output
      // directly (a K/V projection feeding the `present` cache).
      c.isHead = (heads.has(node) && !c.structure) || isHeadName(c.module);
      c.reaches = reach.get(node) ?? [];
    }
  }
  nestedLinears(proto, '', skipped);
  return { candidates, skipped, ...(architecture ? { architecture } : {}), structure: structure.summary };
}

/**
 * The query, key and value parts of a packed q/k/v weight, as separate layers, when the
 * architecture's modules are separate (a fused BERT Attention): PEFT's `query`/`value` targets
 * are then column ranges of the packed weight. Sizes from `qkv_hidden_sizes`, else thirds.
 */
function packedParts(
  node: NodeProto,
  layer: Omit<Candidate, 'module' | 'isHead' | 'naming' | 'reaches'>,
  role: StructuralRole,
  convention: NamingConvention,
): Array<Pick<Candidate, 'module' | 'naming' | 'structure' | 'columns' | 'out'>> | undefined {
  if (role.role !== 'qkv' || layer.layout !== 'io' || !convention.separatesPackedQkv) return undefined;
  const sizes = attrInts(node, 'qkv_hidden_sizes') ?? (layer.out % 3 === 0 ? [layer.out / 3, layer.out / 3, layer.out / 3] : undefined);
  if (!sizes || sizes.length !== 3 || sizes.reduce((a, b) => a + b, 0) !== layer.out) return undefined;
  let start = 0;
  return (['query', 'key', 'value'] as const).map((part, i) => {
    const columns: [number, number] = [start, start + sizes[i]!];
    start = columns[1];
    const r: StructuralRole = { ...role, role: part, pattern: `${part} columns [${columns[0]}, ${columns[1]}) of the ${role.pattern}` };
    const where = role.stack ? `${role.stack} layer ${role.index}` : `layer ${role.index}`;
    return {
      module: convention.name(r),
      naming: { from: 'structure', pattern: role.via, convention: convention.id, detail: `${where} in residual-stream order, attention ${part}: ${r.pattern}` },
      structure: r,
      columns,
      out: sizes[i]!,
    };
  });
}

// ---- --targets -----------------------------------------------------------------------------

const REGEX_CHARS = /[*+?()[\]|^$\\]/;

/** A parsed `--targets` value (PEFT `target_modules`). */
export type TargetSpec = { kind: 'all-linear' } | { kind: 'regex'; source: string; re: SafeRegex } | { kind: 'names'; names: string[] };

/**
 * Parses `--targets`: `all-linear`; a regular expression fully matched against the module path
 * when the value contains any of `*+?()[]|^$\`; else a comma list of module-name suffixes.
 */
export function parseTargets(spec: string | readonly string[]): TargetSpec {
  if (typeof spec !== 'string') {
    const names = spec.map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) throw new PeanutError('E_BAD_CONFIG', '--targets is empty');
    return { kind: 'names', names };
  }
  const s = spec.trim();
  if (s === 'all-linear') return { kind: 'all-linear' };
  if (REGEX_CHARS.test(s)) {
    try {
      // Matched in linear time: a pattern from a downloaded config cannot hang the process.
      return { kind: 'regex', source: s, re: compileSafeRegex(s) };
    } catch (err) {
      throw new PeanutError('E_BAD_CONFIG', `--targets '${s}' is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return parseTargets(s.split(','));
}

/** PEFT's rule: a module matches a name when its path is the name or ends with `.name`. */
export function moduleMatches(module: string, spec: TargetSpec): boolean {
  switch (spec.kind) {
    case 'all-linear':
      return true;
    case 'regex':
      return spec.re.test(module);
    case 'names':
      return spec.names.some((n) => module === n || module.endsWith(`.${n}`));
  }
}

/** The candidates a spec selects (`all-linear`: all but the output head), in graph order. */
export function selectCandidates(candidates: readonly Candidate[], spec: TargetSpec): Candidate[] {
  if (spec.kind === 'all-linear') return candidates.filter((c) => !c.isHead);
  return candidates.filter((c) => moduleMatches(c.module, spec));
}

/** Human form of a spec, for messages and metadata. */
export function describeTargets(spec: TargetSpec): string {
  return spec.kind === 'all-linear' ? 'all-linear' : spec.kind === 'regex' ? spec.source : spec.names.join(',');
}
