/**
 * A small graph layer over GraphProto: producers, consumers and initializers by name, unique
 * names, node insertion, dead-node removal and topological order. The proto stays the single
 * source of truth; indexes are rebuilt lazily after an edit.
 *
 * Nodes inside control-flow subgraphs (If/Loop/Scan) may read outer-scope values without listing
 * them as inputs. `implicitInputs` finds those, so consumers and liveness see them.
 */
import { create, NodeProtoSchema, ValueInfoProtoSchema, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';
import { makeAttribute, subgraphsOf, type AttrValue } from './attributes.ts';
import { PeanutError } from '../errors.ts';

export interface Use {
  node: NodeProto;
  /** Input index, or -1 for an implicit (subgraph) use. */
  index: number;
}

/** Outer-scope names a subgraph reads without defining them. */
export function implicitInputs(node: NodeProto): string[] {
  const out = new Set<string>();
  for (const g of subgraphsOf(node)) collectFreeNames(g, out);
  return [...out];
}

function collectFreeNames(g: GraphProto, out: Set<string>): void {
  const defined = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  for (const n of g.node) {
    for (const i of n.input) if (i && !defined.has(i)) out.add(i);
    for (const i of implicitInputs(n)) if (!defined.has(i)) out.add(i);
    for (const o of n.output) defined.add(o);
  }
  for (const o of g.output) if (!defined.has(o.name)) out.add(o.name);
}

export class Graph {
  #producers?: Map<string, NodeProto>;
  #uses?: Map<string, Use[]>;
  #inits?: Map<string, TensorProto>;
  #names?: Set<string>;

  constructor(readonly proto: GraphProto) {}

  get nodes(): NodeProto[] {
    return this.proto.node;
  }

  /** Call after editing the proto directly (the methods below do it themselves). */
  invalidate(): void {
    this.#producers = undefined;
    this.#uses = undefined;
    this.#inits = undefined;
  }

  #index(): void {
    const producers = new Map<string, NodeProto>();
    const uses = new Map<string, Use[]>();
    for (const node of this.proto.node) {
      for (const o of node.output) if (o) producers.set(o, node);
      node.input.forEach((name, index) => {
        if (!name) return;
        let list = uses.get(name);
        if (!list) uses.set(name, (list = []));
        list.push({ node, index });
      });
      if (node.attribute.some((a) => a.g || a.graphs.length)) {
        for (const name of implicitInputs(node)) {
          let list = uses.get(name);
          if (!list) uses.set(name, (list = []));
          list.push({ node, index: -1 });
        }
      }
    }
    this.#producers = producers;
    this.#uses = uses;
  }

  producer(name: string): NodeProto | undefined {
    if (!this.#producers) this.#index();
    return this.#producers!.get(name);
  }

  uses(name: string): Use[] {
    if (!this.#uses) this.#index();
    return this.#uses!.get(name) ?? [];
  }

  consumers(name: string): NodeProto[] {
    return [...new Set(this.uses(name).map((u) => u.node))];
  }

  initializer(name: string): TensorProto | undefined {
    if (!this.#inits) this.#inits = new Map(this.proto.initializer.map((t) => [t.name, t]));
    return this.#inits.get(name);
  }

  isInput(name: string): boolean {
    return this.proto.input.some((v) => v.name === name);
  }

  isOutput(name: string): boolean {
    return this.proto.output.some((v) => v.name === name);
  }

  /** Every name in use: values, initializers, node names. */
  #allNames(): Set<string> {
    if (!this.#names) {
      const s = new Set<string>();
      const visit = (g: GraphProto) => {
        for (const v of g.input) s.add(v.name);
        for (const v of g.output) s.add(v.name);
        for (const t of g.initializer) s.add(t.name);
        for (const n of g.node) {
          if (n.name) s.add(n.name);
          for (const o of n.output) s.add(o);
          for (const i of n.input) s.add(i);
          for (const sg of subgraphsOf(n)) visit(sg);
        }
      };
      visit(this.proto);
      this.#names = s;
    }
    return this.#names;
  }

  /** `base` if unused, else `base_1`, `base_2`, …; the name is reserved. */
  uniqueName(base: string): string {
    const names = this.#allNames();
    let name = base;
    for (let i = 1; names.has(name); i++) name = `${base}_${i}`;
    names.add(name);
    return name;
  }

  /** Reserves a name that will be created elsewhere (e.g. a graph input). */
  reserve(name: string): void {
    this.#allNames().add(name);
  }

  addInitializer(t: TensorProto): TensorProto {
    if (this.initializer(t.name)) throw new PeanutError('E_GRAPH', `initializer '${t.name}' already exists`);
    this.reserve(t.name);
    this.proto.initializer.push(t);
    this.#inits?.set(t.name, t);
    return t;
  }

  removeInitializer(name: string): TensorProto | undefined {
    const i = this.proto.initializer.findIndex((t) => t.name === name);
    if (i < 0) return undefined;
    const [t] = this.proto.initializer.splice(i, 1);
    this.#inits?.delete(name);
    return t;
  }

  /**
   * Appends a node (or inserts it before `before`). Inputs and outputs are names; the node name is
   * made unique from `name` or the op type.
   */
  addNode(spec: {
    opType: string;
    inputs: string[];
    outputs: string[];
    attrs?: Record<string, AttrValue | undefined>;
    name?: string;
    domain?: string;
    before?: NodeProto;
  }): NodeProto {
    const node = create(NodeProtoSchema, {
      opType: spec.opType,
      domain: spec.domain ?? '',
      input: spec.inputs,
      output: spec.outputs,
      name: this.uniqueName(spec.name ?? spec.opType),
      attribute: Object.entries(spec.attrs ?? {})
        .filter((e): e is [string, AttrValue] => e[1] !== undefined)
        .map(([k, v]) => makeAttribute(k, v)),
    });
    for (const o of spec.outputs) this.reserve(o);
    if (spec.before) {
      const at = this.proto.node.indexOf(spec.before);
      this.proto.node.splice(at < 0 ? this.proto.node.length : at, 0, node);
    } else {
      this.proto.node.push(node);
    }
    this.#producers = undefined;
    this.#uses = undefined;
    return node;
  }

  /** Points every use of `from` (node inputs, graph outputs stay) at `to`. */
  replaceAllUses(from: string, to: string, filter?: (node: NodeProto) => boolean): number {
    let n = 0;
    for (const node of this.proto.node) {
      if (filter && !filter(node)) continue;
      node.input.forEach((name, i) => {
        if (name === from) {
          node.input[i] = to;
          n++;
        }
      });
    }
    this.#uses = undefined;
    return n;
  }

  removeNodes(nodes: Iterable<NodeProto>): void {
    const drop = new Set(nodes);
    this.proto.node = this.proto.node.filter((n) => !drop.has(n));
    this.#producers = undefined;
    this.#uses = undefined;
  }

  /**
   * Removes nodes whose outputs reach no graph output, then initializers nobody reads.
   * Returns how many nodes were removed.
   */
  removeDeadNodes(): number {
    const live = new Set<string>(this.proto.output.map((v) => v.name));
    const keep = new Set<NodeProto>();
    for (let i = this.proto.node.length - 1; i >= 0; i--) {
      const node = this.proto.node[i]!;
      if (node.output.some((o) => live.has(o))) {
        keep.add(node);
        for (const name of node.input) if (name) live.add(name);
        for (const name of implicitInputs(node)) live.add(name);
      }
    }
    const before = this.proto.node.length;
    this.proto.node = this.proto.node.filter((n) => keep.has(n));
    this.proto.initializer = this.proto.initializer.filter((t) => live.has(t.name) || this.isInput(t.name));
    this.invalidate();
    return before - this.proto.node.length;
  }

  /** Reorders nodes so every node comes after the producers of its inputs (stable). */
  topologicalSort(): void {
    this.proto.node = this.topologicalOrder();
    this.invalidate();
  }

  /**
   * The nodes in an order where every node comes after the producers of its inputs, without
   * changing the graph: the node list's own order wherever it already is one (stable).
   */
  topologicalOrder(): NodeProto[] {
    const nodes = this.proto.node;
    const available = new Set<string>([...this.proto.input.map((v) => v.name), ...this.proto.initializer.map((t) => t.name), '']);
    const producerOf = new Map<string, NodeProto>();
    for (const n of nodes) for (const o of n.output) producerOf.set(o, n);
    const deps = (n: NodeProto) => [...n.input, ...implicitInputs(n)].filter((i) => !available.has(i) && producerOf.has(i));
    const order: NodeProto[] = [];
    const state = new Map<NodeProto, 1 | 2>();
    const visit = (root: NodeProto) => {
      // Iterative DFS: transformer graphs are deep enough to overflow recursion.
      const stack: Array<[NodeProto, number]> = [[root, 0]];
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        const [n, i] = top;
        if (i === 0) {
          if (state.get(n) === 2) {
            stack.pop();
            continue;
          }
          state.set(n, 1);
        }
        const d = deps(n);
        if (i < d.length) {
          top[1] = i + 1;
          const p = producerOf.get(d[i]!)!;
          const s = state.get(p);
          if (s === 1) throw new PeanutError('E_GRAPH', `graph has a cycle through node '${p.name}'`);
          if (s !== 2) stack.push([p, 0]);
        } else {
          state.set(n, 2);
          order.push(n);
          stack.pop();
        }
      }
    };
    for (const n of nodes) visit(n);
    return order;
  }
}

/** A ValueInfo for a graph input/output: element type plus dims (number, symbolic name, or unknown). */
export function makeValueInfo(name: string, elemType?: number, dims?: ReadonlyArray<number | string | null>): ValueInfoProto {
  if (elemType === undefined) return create(ValueInfoProtoSchema, { name });
  return create(ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType,
          shape: dims
            ? {
                dim: dims.map((d) =>
                  typeof d === 'number' ? { value: { case: 'dimValue' as const, value: BigInt(d) } } : typeof d === 'string' ? { value: { case: 'dimParam' as const, value: d } } : {},
                ),
              }
            : undefined,
        },
      },
    },
  } as never);
}

/** Element type and dims of a ValueInfo (dims: number, symbolic name, or null when unknown). */
export function valueInfoType(v: ValueInfoProto): { elemType: number; dims?: Array<number | string | null> } | undefined {
  if (v.type?.value.case !== 'tensorType') return undefined;
  const t = v.type.value.value;
  return {
    elemType: t.elemType,
    dims: t.shape?.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : null)),
  };
}
