/**
 * Target discovery: which MatMul/Gemm layers can carry a tweaker, and why the others cannot.
 *
 * Each MatMul/Gemm goes through pattern -> check: the pattern is "linear layer with its weight as
 * input 1"; the checks return a reason when a layer is not a candidate (weight computed at run
 * time, rank ≠ 2, integer, shared with another node, inside a control-flow subgraph, …), which
 * `inspect` shows. Candidates get a module path (see module-path.ts) and an `[in, out]` shape in
 * the layer's own semantics (a Gemm with transB=1, or a weight read through a Transpose, is stored
 * `[out, in]`).
 */
import { PeanutError } from '../errors.ts';
import { attrInt, attrInts } from '../onnx/attributes.ts';
import { DataType as DT, dtypeName } from '../onnx/dtype.ts';
import { Graph } from '../onnx/graph.ts';
import { defaultOpset, graphOf, type OnnxModel } from '../onnx/model.ts';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto.ts';
import { tensorDims } from '../onnx/tensor.ts';
import { modulePathFor, uniquifyModulePaths } from './module-path.ts';
import { readAdapterMeta } from './adapter-meta.ts';

import type { LayerRef, LinearOp } from './layer.ts';
import { compileSafeRegex, type SafeRegex } from '../util/safe-regex.ts';

export type { LayerRef, LinearOp };

/** A layer that can be adapted. */
export interface Candidate extends LayerRef {
  /** Index of the node in the main graph. */
  nodeIndex: number;
  feedNodeIndex: number;
  /** The weight's stored dims. */
  storedShape: [number, number];
  /** The model's output head (excluded by `all-linear`). */
  isHead: boolean;
}

/** A MatMul/Gemm that is not a candidate, and why. */
export interface Skipped {
  node: string;
  op: string;
  module?: string;
  reason: string;
}

export interface Discovery {
  candidates: Candidate[];
  skipped: Skipped[];
}

const ADAPTABLE_TYPES = new Set<number>([DT.FLOAT, DT.FLOAT16, DT.BFLOAT16]);

type Check = { ok: true; weight: Omit<Candidate, 'module' | 'isHead'> } | { ok: false; reason: string };

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
  if (producer) return { name, reason: `weight '${name}' is computed at run time (by ${producer.opType} node '${producer.name}'), not stored in the model` };
  if (g.isInput(name)) return { name, reason: `weight '${name}' is a graph input, not stored in the model` };
  return { name, reason: `weight '${name}' is not defined in this graph (outer-scope or missing value)` };
}

/** Pattern + checks for one MatMul/Gemm of the main graph. */
function checkLayer(g: Graph, node: NodeProto, index: number, opset: number): Check {
  const op = node.opType as LinearOp;
  const weight = node.input[1];
  if (!weight) return { ok: false, reason: 'node has no second input' };
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
  if (op === 'Gemm' && node.input[0] === weight) return { ok: false, reason: 'Gemm reads the weight as both inputs' };
  const transB = op === 'Gemm' && attrInt(node, 'transB', 0) === 1;
  const layout = transB !== !!found.transposeNode ? 'oi' : 'io';
  const feed = found.transposeNode ?? node;
  const [d0, d1] = dims as [number, number];
  return {
    ok: true,
    weight: {
      node: node.name,
      nodeIndex: index,
      op,
      weight: stored,
      weightInput: 1,
      weightSource: found.constantNode ? 'constant' : 'initializer',
      ...(found.constantNode ? { constantNode: found.constantNode.name } : {}),
      ...(found.transposeNode ? { transposeNode: found.transposeNode.name } : {}),
      nodeOutput: node.output[0] ?? '',
      feedNode: feed.name,
      feedOutput: feed.output[0] ?? '',
      feedNodeIndex: g.nodes.indexOf(feed),
      feedInput: found.transposeNode ? 0 : 1,
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

function isLinear(node: NodeProto): boolean {
  return (node.opType === 'MatMul' || node.opType === 'Gemm') && (node.domain === '' || node.domain === 'ai.onnx');
}

/** MatMul/Gemm nodes inside control-flow subgraphs, with the path of the enclosing node. */
function nestedLinears(g: GraphProto, where: string, out: Skipped[]): void {
  for (const n of g.node) {
    for (const a of n.attribute) {
      const graphs = a.g ? [a.g] : a.graphs;
      for (const sg of graphs) {
        const here = `${where}${n.opType} '${n.name}' (${a.name})`;
        for (const inner of sg.node) {
          if (isLinear(inner)) {
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

const PASS_THROUGH = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Transpose', 'Softmax', 'LogSoftmax', 'Sigmoid', 'Tanh', 'Relu', 'Gelu']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);
const HEAD_NAMES = new Set(['lm_head', 'embed_out']);

/**
 * Nodes that compute a graph output with no other layer in between: the output head(s).
 * Walks back from each output through reshapes, casts, activations and bias/scale ops (binary
 * ops whose other operand is a constant).
 */
function headNodes(g: Graph, isCandidate: (n: NodeProto) => boolean): Set<NodeProto> {
  const heads = new Set<NodeProto>();
  const isConst = (name: string) => !!g.initializer(name) || g.producer(name)?.opType === 'Constant';
  for (const out of g.proto.output) {
    let name: string | undefined = out.name;
    for (let steps = 0; name && steps < 16; steps++) {
      const p = g.producer(name);
      if (!p) break;
      if (isCandidate(p)) {
        heads.add(p);
        break;
      }
      if (PASS_THROUGH.has(p.opType)) name = p.input[0];
      else if (BINARY.has(p.opType)) {
        const live = p.input.filter((i) => i && !isConst(i));
        name = live.length === 1 ? live[0] : undefined;
      } else break;
    }
  }
  return heads;
}

/**
 * Finds every adaptable layer of a model and every MatMul/Gemm that is not one, with the reason.
 *
 * @param model - the model (only tensor dims and types are read, never tensor bytes)
 */
export function discoverTargets(model: OnnxModel): Discovery {
  const proto = graphOf(model);
  const g = new Graph(proto);
  const candidates: Candidate[] = [];
  const skipped: Skipped[] = [];
  const candidateNodes = new Set<NodeProto>();
  // In an adapted model the tweaker's own MatMuls are not layers, and the adapted layers are taken.
  const meta = readAdapterMeta(model);
  const tweakerNodes = new Set(meta?.targets.flatMap((t) => t.nodes) ?? []);
  const adaptedLayers = new Map(meta?.targets.map((t) => [t.nodeOutput, t.module]) ?? []);
  proto.node.forEach((node, index) => {
    if (!isLinear(node) || tweakerNodes.has(node.name)) return;
    const taken = adaptedLayers.get(node.output[0] ?? '');
    if (taken !== undefined) {
      skipped.push({ node: node.name, op: node.opType, module: taken, reason: `already adapted (${meta!.config.method}); merge the model first to adapt it again` });
      return;
    }
    const check = checkLayer(g, node, index, defaultOpset(model.proto));
    // The stored weight's name (not a Transpose output) can name the module: `<module>.weight`.
    const module = modulePathFor(node.name, check.ok ? check.weight.weight : node.input[1], `${node.opType.toLowerCase()}_${index}`);
    if (check.ok) {
      candidates.push({ ...check.weight, module, isHead: false });
      candidateNodes.add(node);
    } else {
      skipped.push({ node: node.name, op: node.opType, module, reason: check.reason });
    }
  });
  uniquifyModulePaths(candidates);
  const heads = headNodes(g, (n) => candidateNodes.has(n));
  for (const c of candidates) {
    const node = proto.node[c.nodeIndex]!;
    c.isHead = heads.has(node) || HEAD_NAMES.has(c.module.split('.').pop() ?? '');
  }
  nestedLinears(proto, '', skipped);
  return { candidates, skipped };
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
