/**
 * The generic reverse-mode builder (the tape). Given a graph, a scalar loss and parameter names,
 * it appends the backward nodes (standard ONNX ops, emitted by the per-op rules) and returns the
 * name of each parameter's gradient. It knows no specific op.
 *
 * 1. The gradient path (reach.ts): nodes between the parameters and the loss; each needs a rule.
 * 2. dLoss = 1; nodes are visited in reverse topological order; each rule turns the gradients of
 *    its outputs (GO) into gradients of the inputs that need one (context.ts). A node none of
 *    whose outputs received a gradient is skipped. Gradients meeting at a value are summed with
 *    one `Sum` node.
 *    A decomposed LayerNorm or GELU on the path is differentiated as the op it spells, by that
 *    op's rule (patterns.ts), its inner nodes receiving no gradient.
 * 3. Each rule's output is checked (check.ts): present for every input that needs it, and of the
 *    input's dtype and rank where the builder knows the returned value's type.
 * Backward nodes are emitted for the model's default-domain opset, or for opset 7 where the
 * model imports an older one and raising its import provably changes no node (opset-raise.ts).
 */
import { PeanutError } from '../errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { DataType as DT } from '../onnx/dtype.ts';
import type { Graph } from '../onnx/graph.ts';
import type { NodeProto } from '../onnx/proto.ts';
import type { ShapeTable, ValueShape } from '../onnx/shapes.ts';
import { tensorDims } from '../onnx/tensor.ts';
import { expandTo } from '../onnx/ops.ts';
import { checkRuleResult, inferEmitted } from './check.ts';
import { gradientOpset } from './opset-raise.ts';
import { constantFloats, constantInts, gradContext } from './context.ts';
import { findGradientPath, nodeLabel } from './reach.ts';
import { defaultRegistry, type GradRegistry } from './registry.ts';
import { findSpelledOps, type PatternSources, type SpelledOp } from './patterns.ts';

export interface BuildGradientsOptions {
  graph: Graph;
  /** Opset of the default ONNX domain. */
  opset: number;
  /** Name of the scalar loss value (seeded with dLoss = 1). */
  loss?: string;
  /**
   * Instead of a loss: gradients to start from, forward value -> name of its given gradient
   * (same shape and type), i.e. a vector-Jacobian product. Used by gradient checks.
   */
  seeds?: ReadonlyMap<string, string>;
  /** Values to differentiate with respect to (graph inputs or initializers). */
  params: readonly string[];
  shapes: ShapeTable;
  registry?: GradRegistry;
  /** Directory for external data of constant initializers read by rules (default: inline only). */
  baseDir?: string;
  /** Only find the gradient path and check every node on it has a rule; emit nothing. */
  checkOnly?: boolean;
  /**
   * Differentiate a decomposed LayerNorm or GELU as the op it spells (patterns.ts; default true).
   * false differentiates every node by its own rule (equivalence checks of those rules).
   */
  spelledOps?: boolean;
}

export interface GradientResult {
  /** param -> gradient value name. */
  grads: Map<string, string>;
  /** Forward nodes that were differentiated, in forward order. */
  pathNodes: NodeProto[];
  /** Nodes appended for the backward pass, in order. */
  backwardNodes: NodeProto[];
  /**
   * Default-domain opset the backward nodes are valid at: the given one, or 7 where that was
   * lower (see opset-raise.ts). The caller sets the model's import to it.
   */
  opset: number;
}

/**
 * Appends the backward pass of `loss` with respect to `params` to `graph`.
 *
 * @throws PeanutError E_UNSUPPORTED_OP when a node on the gradient path has no rule;
 *   E_GRAPH when a parameter does not reach the loss or a rule returns a malformed gradient.
 */
export function buildGradients(opts: BuildGradientsOptions): GradientResult {
  const { graph, shapes } = opts;
  const opset = opts.checkOnly ? opts.opset : gradientOpset(graph.proto, opts.opset);
  const seeds = opts.seeds ?? new Map<string, string>();
  if (opts.loss === undefined && seeds.size === 0) throw new PeanutError('E_GRAPH', 'buildGradients needs a loss or seeds');
  const loss = opts.loss ?? [...seeds.keys()].join(', ');
  const roots = opts.loss !== undefined ? [opts.loss] : [...seeds.keys()];
  const registry = opts.registry ?? defaultRegistry();
  graph.topologicalSort();
  const nodes = [...graph.nodes];
  const producers = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) if (o) producers.set(o, n);

  const forwardMeta = (name: string): ValueShape | undefined => {
    const s = shapes.get(name);
    if (s) return s;
    const t = graph.initializer(name);
    return t ? { dtype: t.dataType, shape: tensorDims(t) } : undefined;
  };
  const path = findGradientPath(nodes, { roots, loss, params: opts.params, registry, meta: forwardMeta });
  if (opts.checkOnly) return { grads: new Map(), pathNodes: path.nodes, backwardNodes: [], opset };

  const backwardNodes: NodeProto[] = [];
  const contributions = new Map<string, string[]>();
  /** Types of gradient values: those of the forward values they are gradients of. */
  const gradMeta = new Map<string, ValueShape>();
  /** Types of backward values, inferred where the op makes it plain (checks rule results). */
  const emittedMeta = new Map<string, ValueShape>();
  const meta = (name: string) => forwardMeta(name) ?? gradMeta.get(name);
  const accBuilder = new GraphBuilder(graph, '/grad/accumulate');
  const gradOf = (value: string): string | undefined => {
    const list = contributions.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = accBuilder.op('Sum', list, {}, { name: `AccumulateGrad_${value}` });
    contributions.set(value, [sum]);
    const m = forwardMeta(value);
    if (m) gradMeta.set(sum, m);
    return sum;
  };

  // dLoss = 1 (or the given seeds).
  const seedBuilder = new GraphBuilder(graph, '/grad/seed');
  if (opts.loss !== undefined) {
    const lossMeta = forwardMeta(opts.loss)!;
    let seed: string;
    if (lossMeta.shape.every((d) => d !== null)) {
      const dims = lossMeta.shape as number[];
      const ones = Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => 1);
      seed = lossMeta.dtype === DT.DOUBLE ? seedBuilder.constDouble(ones, dims) : seedBuilder.constFloat(ones, dims, lossMeta.dtype);
    } else {
      const rank = lossMeta.shape.length;
      const one = lossMeta.dtype === DT.DOUBLE ? seedBuilder.constDouble([1], new Array<number>(rank).fill(1)) : seedBuilder.constFloat([1], new Array<number>(rank).fill(1), lossMeta.dtype);
      seed = expandTo({ b: seedBuilder, opset }, one, seedBuilder.op('Shape', [opts.loss]), rank);
    }
    backwardNodes.push(...seedBuilder.emitted);
    contributions.set(opts.loss, [seed]);
    gradMeta.set(seed, lossMeta);
  } else {
    for (const [value, g] of seeds) {
      contributions.set(value, [g]);
      gradMeta.set(g, forwardMeta(value)!);
    }
  }

  const constInts = (name: string) => constantInts(graph, producers, opts.baseDir ?? '.', name);
  // Decomposed LayerNorm / GELU: differentiated as the op they spell (patterns.ts).
  const spelled = opts.spelledOps === false ? new Map<NodeProto, SpelledOp>() : findSpelledOps(path.nodes, patternSources(graph, nodes, producers, opts.baseDir ?? '.', forwardMeta));
  for (let k = path.nodes.length - 1; k >= 0; k--) {
    const node = path.nodes[k]!;
    // No gradient reached any output (the rules below cut it): this node's inputs get none from it.
    if (!node.output.some((o) => o && path.active(o) && contributions.get(o)?.length)) continue;
    const target = spelled.get(node)?.node ?? node;
    const rule = path.rule(target)!;
    const b = new GraphBuilder(graph, `/grad${node.name.startsWith('/') ? '' : '/'}${node.name || node.opType}`);
    const needs = (i: number) => i < target.input.length && target.input[i] !== '' && path.diffEdge(target, i) && path.active(target.input[i]!);
    const out = rule.grad(gradContext(target, { b, opset, meta, gradOf, active: path.active, needs, constInts }));
    backwardNodes.push(...accBuilder.emitted.splice(0), ...b.emitted);
    for (const e of b.emitted) inferEmitted(e, (n) => meta(n) ?? emittedMeta.get(n), emittedMeta);
    target.input.forEach((name, i) => {
      if (!needs(i)) return;
      const g = out[i];
      const want = forwardMeta(name);
      checkRuleResult(g, `the gradient rule for ${nodeLabel(target)}, input ${i} ('${name}')`, want, typeof g === 'string' ? (meta(g) ?? emittedMeta.get(g)) : undefined);
      if (want && !gradMeta.has(g)) gradMeta.set(g, want);
      let list = contributions.get(name);
      if (!list) contributions.set(name, (list = []));
      list.push(g);
    });
  }

  const grads = new Map<string, string>();
  for (const p of opts.params) {
    const g = gradOf(p);
    if (!g) throw new PeanutError('E_GRAPH', `no gradient reached parameter '${p}'`);
    grads.set(p, g);
  }
  backwardNodes.push(...accBuilder.emitted.splice(0));
  return { grads, pathNodes: path.nodes, backwardNodes, opset };
}

/** What pattern matching reads of the graph: readers, outputs, producers, constants, shapes. */
function patternSources(graph: Graph, nodes: readonly NodeProto[], producers: ReadonlyMap<string, NodeProto>, baseDir: string, meta: (name: string) => ValueShape | undefined): PatternSources {
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) for (const i of n.input) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(n);
  return {
    consumers,
    outputs: new Set(graph.proto.output.map((o) => o.name)),
    producer: (name) => producers.get(name),
    constFloats: (name) => constantFloats(graph, producers, baseDir, name),
    constInts: (name) => constantInts(graph, producers, baseDir, name),
    shape: (name) => meta(name)?.shape,
    dtype: (name) => meta(name)?.dtype,
  };
}
