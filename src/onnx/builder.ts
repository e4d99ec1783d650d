/**
 * The one node emitter used by the tweaker, loss heads, gradient rules and optimizer: every
 * node and constant it makes gets a unique name under a common prefix, so subgraphs built by
 * different passes never collide.
 *
 *   const b = new GraphBuilder(graph, '/peanut/query');
 *   const h = b.op('MatMul', [w0, b.op('Transpose', [a])]);
 */
import type { NodeProto } from './proto.ts';
import type { AttrValue } from './attributes.ts';
import { Graph } from './graph.ts';
import { DataType as DT } from './dtype.ts';
import { floatTensor, int64Tensor, makeTensor } from './tensor.ts';

export interface OpOptions {
  /** Number of outputs (default 1) or explicit output names. */
  outputs?: number | string[];
  domain?: string;
  /** Node name hint (made unique). */
  name?: string;
}

export class GraphBuilder {
  readonly #constCache = new Map<string, string>();
  /** Nodes emitted so far, in order. */
  readonly emitted: NodeProto[] = [];

  constructor(
    readonly graph: Graph,
    readonly prefix: string,
    /** Insert before this node instead of appending. */
    readonly before?: NodeProto,
  ) {}

  /** Emits one node and returns its output names. */
  opN(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, opts: OpOptions = {}): string[] {
    // addNode makes the node name unique (and reserves it); output names derive from that name,
    // so `<prefix>/MatMul` outputs `<prefix>/MatMul_output_0` as torch.onnx names them.
    const node = this.graph.addNode({ opType, inputs, outputs: [], attrs, name: `${this.prefix}/${opts.name ?? opType}`, domain: opts.domain, before: this.before });
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.graph.uniqueName(`${node.name}_output_${i}`));
    for (const o of outs) this.graph.reserve(o);
    node.output = outs;
    this.emitted.push(node);
    return outs;
  }

  /** Emits a single-output node and returns the output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, opts: OpOptions = {}): string {
    return this.opN(opType, inputs, attrs, opts)[0]!;
  }

  /** A float constant (initializer), cached by value and type. */
  constFloat(values: readonly number[] | Float32Array, dims: readonly number[] = [], dataType: number = DT.FLOAT): string {
    const key = `f${dataType}:${dims.join('x')}:${Array.from(values).join(',')}`;
    return this.#cached(key, (name) => floatTensor(name, dims, Float32Array.from(values), dataType));
  }

  /** A scalar of a given float type: `scalar(0.5)`. */
  scalar(value: number, dataType: number = DT.FLOAT): string {
    return this.constFloat([value], [], dataType);
  }

  /** An int64 constant (initializer), cached by value. */
  constInt64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    return this.#cached(key, (name) => int64Tensor(name, dims, values));
  }

  /** A bool tensor constant. */
  constBool(values: readonly boolean[], dims: readonly number[] = [values.length]): string {
    const key = `b:${dims.join('x')}:${values.join(',')}`;
    return this.#cached(key, (name) => makeTensor(name, DT.BOOL, dims, Uint8Array.from(values, (v) => (v ? 1 : 0))));
  }

  /** A double constant (for float64 graphs). */
  constDouble(values: readonly number[], dims: readonly number[] = []): string {
    const key = `d:${dims.join('x')}:${values.join(',')}`;
    return this.#cached(key, (name) => makeTensor(name, DT.DOUBLE, dims, new Uint8Array(Float64Array.from(values).buffer)));
  }

  #cached(key: string, make: (name: string) => ReturnType<typeof makeTensor>): string {
    const hit = this.#constCache.get(key);
    if (hit) return hit;
    const name = this.graph.uniqueName(`${this.prefix}/const`);
    this.graph.addInitializer(make(name));
    this.#constCache.set(key, name);
    return name;
  }
}
