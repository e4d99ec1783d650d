/**
 * The context a gradient rule sees for one forward node (see rule.ts): its inputs and outputs,
 * the gradients reaching its outputs, which inputs need one, the probed shapes and types, and a
 * builder scoped under the node's name.
 */
import { PeanutError } from '../errors.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import type { Graph } from '../onnx/graph.ts';
import type { NodeProto, TensorProto } from '../onnx/proto.ts';
import type { ValueShape } from '../onnx/shapes.ts';
import { numElements, tensorDims, tensorToFloat32, tensorToInts } from '../onnx/tensor.ts';
import { isFloatType } from '../onnx/dtype.ts';
import { unbroadcast } from './broadcast.ts';
import { nodeLabel } from './reach.ts';
import type { GradContext, StaticShape } from './rule.ts';

export interface ContextSources {
  b: GraphBuilder;
  opset: number;
  /** Shape and type of a forward or backward value, where known. */
  meta: (name: string) => ValueShape | undefined;
  /** The (accumulated) gradient of a forward output, if one reaches it. */
  gradOf: (value: string) => string | undefined;
  /** Whether a value lies on the gradient path. */
  active: (name: string) => boolean;
  /** Whether input `i` of `node` needs a gradient. */
  needs: (i: number) => boolean;
  /** Values of constant forward inputs (initializers, Constant nodes). */
  constInts: (name: string) => number[] | undefined;
}

/** The rule context of `node`. */
export function gradContext(node: NodeProto, src: ContextSources): GradContext {
  const { b, opset } = src;
  const goCache = new Map<number, string | undefined>();
  const shapeOf = (name: string): StaticShape => {
    const m = src.meta(name);
    if (!m) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} asked for the shape of '${name}', which was not probed`);
    return m.shape;
  };
  return {
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
        goCache.set(i, o && src.active(o) ? src.gradOf(o) : undefined);
      }
      return goCache.get(i);
    },
    get dY() {
      const g = this.GO(0);
      if (g === undefined) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} read the gradient of output 0, which received none (use GO(i) for ops with several outputs)`);
      return g;
    },
    needsGrad: src.needs,
    shape: shapeOf,
    rank: (name) => shapeOf(name).length,
    sameDim: (a, i, bName, j) => {
      const da = shapeOf(a)[i];
      const db = shapeOf(bName)[j];
      if (typeof da === 'number' || typeof db === 'number') return da === db;
      const sa = src.meta(a)?.samples;
      const sb = src.meta(bName)?.samples;
      return !!sa && !!sb && sa.length === sb.length && sa.every((dims, k) => dims[i] === sb[k]![j]);
    },
    dtype: (name) => {
      const m = src.meta(name);
      if (!m) throw new PeanutError('E_GRAPH', `gradient rule for ${nodeLabel(node)} asked for the dtype of '${name}', which was not probed`);
      return m.dtype;
    },
    unbroadcast: (grad, like, gradShape) => unbroadcast(b, opset, grad, gradShape ?? shapeOf(node.output[0]!), shapeOf(like)),
    constInts: src.constInts,
  };
}

/**
 * The integer values of a constant: an initializer, or a Constant node's value. Undefined for
 * anything computed at run time.
 */
export function constantInts(graph: Graph, producers: ReadonlyMap<string, NodeProto>, baseDir: string, name: string): number[] | undefined {
  const t = graph.initializer(name);
  if (t) return tensorToInts(t, baseDir);
  const p = producers.get(name);
  if (!p || p.opType !== 'Constant') return undefined;
  const a = p.attribute[0];
  if (!a) return undefined;
  switch (a.name) {
    case 'value':
      return a.t ? tensorToInts(a.t, baseDir) : undefined;
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
}

/** Constants larger than this are not read as values here (patterns only need scalars). */
const SMALL_CONSTANT = 16;

/**
 * The values of a small floating-point constant (an initializer or a Constant node) as numbers;
 * undefined for run-time values, integer tensors and constants of more than 16 elements.
 */
export function constantFloats(graph: Graph, producers: ReadonlyMap<string, NodeProto>, baseDir: string, name: string): number[] | undefined {
  const read = (t: TensorProto) => (isFloatType(t.dataType) && numElements(tensorDims(t)) <= SMALL_CONSTANT ? Array.from(tensorToFloat32(t, baseDir)) : undefined);
  const t = graph.initializer(name);
  if (t) return read(t);
  const p = producers.get(name);
  const a = p?.opType === 'Constant' ? p.attribute[0] : undefined;
  if (!a) return undefined;
  if (a.name === 'value') return a.t ? read(a.t) : undefined;
  if (a.name === 'value_float') return [a.f];
  if (a.name === 'value_floats') return a.floats.length <= SMALL_CONSTANT ? [...a.floats] : undefined;
  return undefined;
}
