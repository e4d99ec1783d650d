/**
 * Which nodes get gradients: the values reachable forward from the parameters, intersected with
 * those reaching the loss backward. Both searches skip stop-gradient edges: non-float values,
 * inputs outside a rule's `differentiableInputs`, and every no-gradient op. A node on that path
 * with no rule is an error naming the op, the node and the path to it.
 */
import { PeanutError } from '../errors.ts';
import { isFloatType, dtypeName } from '../onnx/dtype.ts';
import { implicitInputs } from '../onnx/graph.ts';
import type { NodeProto } from '../onnx/proto.ts';
import type { ValueShape } from '../onnx/shapes.ts';
import type { GradRegistry } from './registry.ts';
import type { GradRule } from './rule.ts';

/** `Op (domain 'd') node 'name'`, for messages. */
export const nodeLabel = (n: NodeProto) => `${n.opType}${n.domain && n.domain !== 'ai.onnx' ? ` (domain '${n.domain}')` : ''} node '${n.name || '<unnamed>'}'`;

/** The gradient path through a graph, and the edge tests the walk uses. */
export interface GradientPath {
  /** Forward nodes to differentiate, in forward order. */
  nodes: NodeProto[];
  /** Whether a value lies on the path (reached from a parameter and reaching the loss). */
  active(name: string): boolean;
  /** Whether input `i` of `n` carries a gradient. */
  diffEdge(n: NodeProto, i: number): boolean;
  rule(n: NodeProto): GradRule | undefined;
}

/** The edge tests of a registry over a graph whose value types `meta` knows. */
function edges(registry: GradRegistry, meta: (name: string) => ValueShape | undefined) {
  // A value probing could not type (a sequence or optional op's output) counts as float, so a
  // path through it fails loudly (no rule for that op) instead of being cut silently.
  const isFloatValue = (name: string) => {
    const m = meta(name);
    return m === undefined || isFloatType(m.dtype);
  };
  const rule = (n: NodeProto): GradRule | undefined => registry.rule(n.domain, n.opType);
  const noGrad = (n: NodeProto) => registry.isNoGradient(n.domain, n.opType);
  const diffEdge = (n: NodeProto, i: number): boolean => {
    const name = n.input[i];
    if (!name || noGrad(n) || !isFloatValue(name)) return false;
    const r = rule(n);
    return !r?.differentiableInputs || r.differentiableInputs.includes(i);
  };
  const diffOutput = (n: NodeProto, o: string) => !!o && !noGrad(n) && isFloatValue(o);
  return { isFloatValue, rule, diffEdge, diffOutput };
}

const hasSubgraphs = (n: NodeProto) => n.attribute.some((a) => a.g || a.graphs.length);

/** The values with a differentiable path to `roots` (walking `nodes`, in topological order, backward). */
function backwardReach(nodes: readonly NodeProto[], roots: readonly string[], e: Pick<ReturnType<typeof edges>, 'isFloatValue' | 'diffEdge' | 'diffOutput'>): Set<string> {
  const bwd = new Set<string>(roots);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.output.some((o) => bwd.has(o) && e.diffOutput(n, o))) continue;
    n.input.forEach((name, i) => {
      if (e.diffEdge(n, i)) bwd.add(name);
    });
    if (hasSubgraphs(n)) for (const name of implicitInputs(n)) if (e.isFloatValue(name)) bwd.add(name);
  }
  return bwd;
}

/**
 * Which of `params` reach the loss through differentiable ops (the rest would get no gradient):
 * the same backward walk `findGradientPath` makes, without its errors.
 */
export function paramsReachingLoss(
  nodes: readonly NodeProto[],
  opts: { roots: readonly string[]; params: readonly string[]; registry: GradRegistry; meta: (name: string) => ValueShape | undefined },
): string[] {
  const bwd = backwardReach(nodes, opts.roots, edges(opts.registry, opts.meta));
  return opts.params.filter((p) => bwd.has(p));
}

/**
 * Finds the nodes between `params` and `roots` (in topological order `nodes`).
 *
 * @throws PeanutError E_GRAPH / E_DTYPE for a parameter or loss that is not a float value of
 *   the graph or does not reach the loss; E_UNSUPPORTED_OP for a node on the path without a rule.
 */
export function findGradientPath(
  nodes: readonly NodeProto[],
  opts: { roots: readonly string[]; loss: string; params: readonly string[]; registry: GradRegistry; meta: (name: string) => ValueShape | undefined },
): GradientPath {
  const { roots, params, meta } = opts;
  const { isFloatValue, rule, diffEdge, diffOutput } = edges(opts.registry, meta);

  for (const p of params) {
    if (!meta(p)) throw new PeanutError('E_GRAPH', `parameter '${p}' is not a value of the graph (no initializer, input or probed shape)`);
    if (!isFloatType(meta(p)!.dtype)) throw new PeanutError('E_DTYPE', `parameter '${p}' is ${dtypeName(meta(p)!.dtype)}; only floating tensors can be trained`);
  }
  // Forward reach from the parameters, with a parent pointer for error paths.
  const fwd = new Set<string>(params);
  const cameFrom = new Map<string, { node: NodeProto; input: string }>();
  // Nodes whose subgraphs (If/Loop/Scan bodies) read a parameter-dependent value implicitly.
  const implicitReach = new Set<NodeProto>();
  for (const n of nodes) {
    let via: string | undefined;
    n.input.forEach((name, i) => {
      if (via === undefined && fwd.has(name) && diffEdge(n, i)) via = name;
    });
    if (via === undefined && hasSubgraphs(n)) {
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
  const bwd = backwardReach(nodes, roots, { isFloatValue, diffEdge, diffOutput });
  for (const r of roots) {
    if (!meta(r)) throw new PeanutError('E_GRAPH', `loss '${r}' is not a value of the graph`);
    if (!isFloatValue(r)) throw new PeanutError('E_DTYPE', `loss '${r}' is ${dtypeName(meta(r)!.dtype)}, not a floating value`);
  }
  for (const p of params) {
    if (!bwd.has(p)) throw new PeanutError('E_GRAPH', `cannot compute the gradient of '${p}': it does not reach the loss '${opts.loss}' through differentiable ops`);
  }
  const active = (name: string) => fwd.has(name) && bwd.has(name);
  const pathNodes = nodes.filter(
    (n) => n.output.some((o) => active(o) && diffOutput(n, o)) && (implicitReach.has(n) || n.input.some((name, i) => active(name) && diffEdge(n, i))),
  );

  /** How a parameter reaches `n`, for the unsupported-op message. */
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

  for (const n of pathNodes) {
    if (!rule(n)) {
      throw new PeanutError(
        'E_UNSUPPORTED_OP',
        `no gradient rule for op '${n.opType}'${n.domain ? ` (domain '${n.domain}')` : ''} at ${nodeLabel(n)}, on the gradient path ${pathTo(n)}. ` +
          `Fix: export the model with a different opset or without fused/contrib ops (e.g. un-fuse '${n.opType}' into standard ONNX ops), ` +
          `choose targets whose path to the loss avoids it, or report the op so a rule can be added.`,
      );
    }
  }
  return { nodes: pathNodes, active, diffEdge, rule };
}
