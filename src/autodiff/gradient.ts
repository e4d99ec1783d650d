/**
 * The generic reverse-mode builder. Given a graph, a scalar loss and parameter names, it appends
 * the backward nodes (standard ONNX ops, emitted by the per-op rules) and returns the name of
 * each parameter's gradient. It knows no specific op.
 *
 * 1. Which nodes get gradients: the values reachable forward from the parameters, intersected
 *    with those reaching the loss backward. Both searches skip stop-gradient edges: non-float
 *    values, inputs outside a rule's `differentiableInputs`, and every no-gradient op.
 * 2. A node on that path with no rule is an error naming the op, the node and the path to it.
 * 3. dLoss = 1; nodes are visited in reverse topological order; each rule turns the gradients of
 *    its outputs (GO) into gradients of the inputs that need one (needsGrad). Gradients meeting
 *    at a value are summed with one `Sum` node.
 * 4. Each rule's output is checked: present for every input that needs it, and of the input's
 *    dtype and rank where the builder knows the returned value's type.
 * Backward nodes are emitted for the model's default-domain opset, or for opset 7 where the
 * model imports an older one and raising its import provably changes no node (opset-raise.ts).
 */
import { PeanutError } from '../errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { findAttr } from '../onnx/attributes.ts';
import { DataType as DT, dtypeName, isFloatType } from '../onnx/dtype.ts';
import { Graph, implicitInputs, valueInfoType } from '../onnx/graph.ts';
import { create, GraphProtoSchema } from '../onnx/proto.ts';
import type { NodeProto } from '../onnx/proto.ts';
import { tensorDims, tensorToInts } from '../onnx/tensor.ts';
import { unbroadcast } from './broadcast.ts';
import { expandTo } from './ops.ts';
import type { ShapeTable, ValueShape } from './probe.ts';
import { gradientOpset } from './opset-raise.ts';
import { defaultRegistry, type GradRegistry } from './registry.ts';
import type { GradContext, GradRule, StaticShape } from './rule.ts';

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

const nodeLabel = (n: NodeProto) => `${n.opType}${n.domain && n.domain !== 'ai.onnx' ? ` (domain '${n.domain}')` : ''} node '${n.name || '<unnamed>'}'`;

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

  const meta = (name: string): ValueShape | undefined => {
    const s = shapes.get(name);
    if (s) return s;
    const t = graph.initializer(name);
    return t ? { dtype: t.dataType, shape: tensorDims(t) } : undefined;
  };
  // A value probing could not type (a sequence or optional op's output) counts as float, so a
  // path through it fails loudly (no rule for that op) instead of being cut silently.
  const isFloatValue = (name: string) => {
    const m = meta(name);
    return m === undefined || isFloatType(m.dtype);
  };
  const ruleOf = (n: NodeProto): GradRule | undefined => registry.rule(n.domain, n.opType);
  const noGrad = (n: NodeProto) => registry.isNoGradient(n.domain, n.opType);
  const diffEdge = (n: NodeProto, i: number): boolean => {
    const name = n.input[i];
    if (!name || noGrad(n) || !isFloatValue(name)) return false;
    const r = ruleOf(n);
    return !r?.differentiableInputs || r.differentiableInputs.includes(i);
  };
  const diffOutput = (n: NodeProto, o: string) => !!o && !noGrad(n) && isFloatValue(o);

  // 1a. forward reach from the parameters (with a parent pointer for error paths)
  const params = [...opts.params];
  for (const p of params) {
    if (!meta(p)) throw new PeanutError('E_GRAPH', `parameter '${p}' is not a value of the graph (no initializer, input or probed shape)`);
    if (!isFloatType(meta(p)!.dtype)) throw new PeanutError('E_DTYPE', `parameter '${p}' is ${dtypeName(meta(p)!.dtype)}; only floating tensors can be trained`);
  }
  const fwd = new Set<string>(params);
  const cameFrom = new Map<string, { node: NodeProto; input: string }>();
  // Nodes whose subgraphs (If/Loop/Scan bodies) read a parameter-dependent value implicitly.
  const implicitReach = new Set<NodeProto>();
  for (const n of nodes) {
    let via: string | undefined;
    n.input.forEach((name, i) => {
      if (via === undefined && fwd.has(name) && diffEdge(n, i)) via = name;
    });
    if (via === undefined && n.attribute.some((a) => a.g || a.graphs.length)) {
      via = implicitInputs(n).find((name) => fwd.has(name));
      if (via !== undefined) implicitReach.add(n);
    }
    if (via === undefined) continue;
    for (const o of n.output) {
      if (diffOutput(n, o) && !fwd.has(o)) {
        fwd.add(o);
        cameFrom.set(o, { node: n, input: via });
      }
    }
  }
  // 1b. backward reach from the loss
  const bwd = new Set<string>(roots);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.output.some((o) => bwd.has(o) && diffOutput(n, o))) continue;
    n.input.forEach((name, i) => {
      if (diffEdge(n, i)) bwd.add(name);
    });
    if (n.attribute.some((a) => a.g || a.graphs.length)) for (const name of implicitInputs(n)) if (isFloatValue(name)) bwd.add(name);
  }
  for (const r of roots) {
    if (!meta(r)) throw new PeanutError('E_GRAPH', `loss '${r}' is not a value of the graph`);
    if (!isFloatValue(r)) throw new PeanutError('E_DTYPE', `loss '${r}' is ${dtypeName(meta(r)!.dtype)}, not a floating value`);
  }
  for (const p of params) {
    if (!bwd.has(p)) throw new PeanutError('E_GRAPH', `cannot compute the gradient of '${p}': it does not reach the loss '${loss}' through differentiable ops`);
  }
  const active = (name: string) => fwd.has(name) && bwd.has(name);
  const pathNodes = nodes.filter(
    (n) => n.output.some((o) => active(o) && diffOutput(n, o)) && (implicitReach.has(n) || n.input.some((name, i) => active(name) && diffEdge(n, i))),
  );

  const pathTo = (n: NodeProto): string => {
    const steps: string[] = [`${n.opType} '${n.name}'`];
    let v = n.input.find((name, i) => fwd.has(name) && diffEdge(n, i)) ?? (implicitReach.has(n) ? implicitInputs(n).find((name) => fwd.has(name)) : undefined);
    for (let guard = 0; v !== undefined && guard < 10_000; guard++) {
      const c = cameFrom.get(v);
      if (!c) {
        steps.push(`'${v}'`);
        break;
      }
      steps.push(`${c.node.opType} '${c.node.name}'`);
      v = c.input;
    }
    steps.reverse();
    // Long paths (deep models) keep their ends: where it starts and how it reaches the node.
    if (steps.length > 9) steps.splice(3, steps.length - 8, `... ${steps.length - 8} more nodes ...`);
    return steps.join(' -> ');
  };

  // 2. every node on the path needs a rule
  for (const n of pathNodes) {
    if (!ruleOf(n)) {
      throw new PeanutError(
        'E_UNSUPPORTED_OP',
        `no gradient rule for op '${n.opType}'${n.domain ? ` (domain '${n.domain}')` : ''} at ${nodeLabel(n)}, on the gradient path ${pathTo(n)}. ` +
          `Fix: export the model with a different opset or without fused/contrib ops (e.g. un-fuse '${n.opType}' into standard ONNX ops), ` +
          `choose targets whose path to the loss avoids it, or report the op so a rule can be added.`,
      );
    }
  }

  if (opts.checkOnly) return { grads: new Map(), pathNodes, backwardNodes: [], opset };

  // 3. reverse walk
  const backwardNodes: NodeProto[] = [];
  const contributions = new Map<string, string[]>();
  const gradMeta = new Map<string, ValueShape>();
  /** Types of backward values, inferred where the op makes it plain (checks rule results). */
  const emittedMeta = new Map<string, ValueShape>();
  const accBuilder = new GraphBuilder(graph, '/grad/accumulate');
  const gradOf = (value: string): string | undefined => {
    const list = contributions.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = accBuilder.op('Sum', list, {}, { name: `AccumulateGrad_${value}` });
    contributions.set(value, [sum]);
    const m = meta(value);
    if (m) gradMeta.set(sum, m);
    return sum;
  };
  const seedBuilder = new GraphBuilder(graph, '/grad/seed');
  if (opts.loss !== undefined) {
    const lossMeta = meta(opts.loss)!;
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
      gradMeta.set(g, meta(value)!);
    }
  }

  const constInts = (name: string): number[] | undefined => {
    const t = graph.initializer(name);
    if (t) return tensorToInts(t, opts.baseDir ?? '.');
    const p = producers.get(name);
    if (!p || p.opType !== 'Constant') return undefined;
    const a = p.attribute[0];
    if (!a) return undefined;
    switch (a.name) {
      case 'value':
        return a.t ? tensorToInts(a.t, opts.baseDir ?? '.') : undefined;
      case 'value_int':
        return [Number(a.i)];
      case 'value_ints':
        return a.ints.map(Number);
      case 'value_float':
        return [a.f];
      case 'value_floats':
        return [...a.floats];
      default:
        return undefined;
    }
  };

  for (let k = pathNodes.length - 1; k >= 0; k--) {
    const node = pathNodes[k]!;
    const rule = ruleOf(node)!;
    const goCache = new Map<number, string | undefined>();
    const b = new GraphBuilder(graph, `/grad${node.name.startsWith('/') ? '' : '/'}${node.name || node.opType}`);
    const needs = (i: number) => i < node.input.length && diffEdge(node, i) && active(node.input[i]!);
    const shapeOf = (name: string): StaticShape => {
      const m = meta(name) ?? gradMeta.get(name);
      if (!m) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} asked for the shape of '${name}', which was not probed`);
      return m.shape;
    };
    const ctx: GradContext = {
      node,
      b,
      opset,
      inputCount: node.input.length,
      I: (i) => {
        const name = node.input[i];
        if (name === undefined) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} read input ${i}, which the node does not have`);
        return name;
      },
      O: (i) => {
        const name = node.output[i];
        if (name === undefined) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} read output ${i}, which the node does not have`);
        return name;
      },
      GO: (i) => {
        if (!goCache.has(i)) {
          const o = node.output[i];
          goCache.set(i, o && active(o) ? gradOf(o) : undefined);
        }
        return goCache.get(i);
      },
      needsGrad: needs,
      shape: shapeOf,
      rank: (name) => shapeOf(name).length,
      dtype: (name) => {
        const m = meta(name) ?? gradMeta.get(name);
        if (!m) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} asked for the dtype of '${name}', which was not probed`);
        return m.dtype;
      },
      unbroadcast: (grad, like, gradShape) => unbroadcast(b, opset, grad, gradShape ?? shapeOf(node.output[0]!), shapeOf(like)),
      constInts,
    };
    const out = rule.grad(ctx);
    backwardNodes.push(...accBuilder.emitted.splice(0), ...b.emitted);
    for (const e of b.emitted) inferEmitted(e, (n) => meta(n) ?? gradMeta.get(n) ?? emittedMeta.get(n), emittedMeta);
    node.input.forEach((name, i) => {
      if (!needs(i)) return;
      const g = out[i];
      const where = `the gradient rule for ${nodeLabel(node)}, input ${i} ('${name}')`;
      if (typeof g !== 'string' || g === '') throw new PeanutError('E_GRAPH', `${where} returned no gradient, but that input needs one`);
      const want = meta(name);
      const got = meta(g) ?? gradMeta.get(g) ?? emittedMeta.get(g);
      if (got && want && got.dtype !== want.dtype) throw new PeanutError('E_GRAPH', `${where} returned '${g}' of type ${dtypeName(got.dtype)}, expected ${dtypeName(want.dtype)}`);
      if (got && want && got.shape.length !== want.shape.length) throw new PeanutError('E_GRAPH', `${where} returned '${g}' of rank ${got.shape.length}, expected rank ${want.shape.length}`);
      if (want && !gradMeta.has(g)) gradMeta.set(g, want);
      let list = contributions.get(name);
      if (!list) contributions.set(name, (list = []));
      list.push(g);
    });
  }

  const grads = new Map<string, string>();
  for (const p of params) {
    const g = gradOf(p);
    if (!g) throw new PeanutError('E_GRAPH', `no gradient reached parameter '${p}'`);
    grads.set(p, g);
  }
  backwardNodes.push(...accBuilder.emitted.splice(0));
  return { grads, pathNodes, backwardNodes, opset };
}

/** The opset of the default domain a model imports. */
export function defaultOpset(opsetImport: ReadonlyArray<{ domain: string; version: bigint }>): number {
  const e = opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return e ? Number(e.version) : 1;
}

/** Whether a node attribute is set (helper for rules with optional attributes). */
export function hasAttr(node: NodeProto, name: string): boolean {
  return findAttr(node, name) !== undefined;
}

/**
 * Finds an op without a gradient rule on the path from `params` to `loss` without probed shapes:
 * value types come from initializers and graph inputs, every other value counts as float unless
 * it is a Cast to a non-float type. Used to explain a model onnxruntime cannot even run.
 *
 * @throws PeanutError E_UNSUPPORTED_OP as buildGradients would; returns quietly otherwise.
 */
export function checkRulesWithoutShapes(graph: Graph, opts: { loss: string; params: readonly string[]; registry?: GradRegistry }): void {
  const copy = new Graph(create(GraphProtoSchema, { ...graph.proto, node: [...graph.proto.node] }));
  const table: ShapeTable = new Map();
  for (const t of graph.proto.initializer) table.set(t.name, { dtype: t.dataType, shape: tensorDims(t) });
  for (const v of graph.proto.input) {
    const t = valueInfoType(v);
    if (t) table.set(v.name, { dtype: t.elemType, shape: (t.dims ?? []).map((d) => (typeof d === 'number' ? d : null)) });
  }
  for (const n of graph.proto.node) {
    const to = n.opType === 'Cast' ? findAttr(n, 'to') : undefined;
    const dtype = to && !isFloatType(Number(to.i)) ? Number(to.i) : DT.FLOAT;
    for (const o of n.output) if (o && !table.has(o)) table.set(o, { dtype, shape: [] });
  }
  try {
    buildGradients({ graph: copy, opset: 1, loss: opts.loss, params: opts.params, shapes: table, checkOnly: true, ...(opts.registry ? { registry: opts.registry } : {}) });
  } catch (err) {
    if (err instanceof PeanutError && err.code === 'E_UNSUPPORTED_OP') throw err;
  }
}

const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Neg', 'Exp', 'Log', 'Sqrt', 'Tanh', 'Sigmoid',
  'Relu', 'Erf', 'Abs', 'Reciprocal', 'Identity', 'Sin', 'Cos', 'Clip', 'Where',
]);
const BOOLEAN = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor']);

/**
 * Element type and rank of an emitted backward node's output, where the op makes them plain
 * (elementwise ops, Cast, Transpose, Gemm, MatMul, comparisons); unknown otherwise. Only the
 * rank is tracked (dims as null).
 */
function inferEmitted(n: NodeProto, known: (name: string) => ValueShape | undefined, out: Map<string, ValueShape>): void {
  const o = n.output[0];
  if (!o || n.domain) return;
  const ins = n.input.map((i) => (i ? known(i) : undefined));
  const set = (dtype: number | undefined, rank: number | undefined) => {
    if (dtype !== undefined && rank !== undefined) out.set(o, { dtype, shape: Array.from({ length: rank }, () => null) });
  };
  const maxRank = (list: Array<ValueShape | undefined>) => (list.every((m) => m) ? Math.max(0, ...list.map((m) => m!.shape.length)) : undefined);
  if (ELEMENTWISE.has(n.opType)) {
    const data = n.opType === 'Where' ? ins.slice(1) : n.opType === 'Clip' ? ins.slice(0, 1) : ins;
    set(data.find((m) => m)?.dtype, maxRank(n.opType === 'Clip' ? ins.slice(0, 1) : ins));
  } else if (BOOLEAN.has(n.opType)) set(DT.BOOL, maxRank(ins));
  else if (n.opType === 'Cast') set(Number(findAttr(n, 'to')?.i ?? -1), ins[0]?.shape.length);
  else if (n.opType === 'Transpose') set(ins[0]?.dtype, ins[0]?.shape.length);
  else if (n.opType === 'Gemm') set(ins[0]?.dtype, 2);
  else if (n.opType === 'MatMul' && ins[0] && ins[1] && ins[0].shape.length >= 2 && ins[1].shape.length >= 2) set(ins[0].dtype, Math.max(ins[0].shape.length, ins[1].shape.length));
  else if (n.opType === 'Shape') set(DT.INT64, 1);
}
