/**
 * Checks on what gradient rules emit: each rule's result must be present for every input that
 * needs one, and of that input's element type and rank where the builder can tell the returned
 * value's type. Also the rule check for models ONNX Runtime cannot run (no probed shapes).
 */
import { PeanutError } from '../errors.ts';
import { findAttr } from '../onnx/attributes.ts';
import { DataType as DT, dtypeName, isFloatType } from '../onnx/dtype.ts';
import { Graph, valueInfoType } from '../onnx/graph.ts';
import { create, GraphProtoSchema, type NodeProto } from '../onnx/proto.ts';
import type { ShapeTable, ValueShape } from '../onnx/shapes.ts';
import { tensorDims } from '../onnx/tensor.ts';
import { findGradientPath } from './reach.ts';
import { defaultRegistry, type GradRegistry } from './registry.ts';

/**
 * Checks a rule's gradient `g` for input `name` (`where` names the rule and input in messages).
 *
 * @throws PeanutError E_GRAPH for a missing gradient or one of the wrong type or rank.
 */
export function checkRuleResult(g: unknown, where: string, want: ValueShape | undefined, got: ValueShape | undefined): asserts g is string {
  if (typeof g !== 'string' || g === '') throw new PeanutError('E_GRAPH', `${where} returned no gradient, but that input needs one`);
  if (got && want && got.dtype !== want.dtype) throw new PeanutError('E_GRAPH', `${where} returned '${g}' of type ${dtypeName(got.dtype)}, expected ${dtypeName(want.dtype)}`);
  if (got && want && got.shape.length !== want.shape.length) throw new PeanutError('E_GRAPH', `${where} returned '${g}' of rank ${got.shape.length}, expected rank ${want.shape.length}`);
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
  copy.topologicalSort();
  try {
    findGradientPath([...copy.nodes], { roots: [opts.loss], loss: opts.loss, params: opts.params, registry: opts.registry ?? defaultRegistry(), meta: (name) => table.get(name) });
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
export function inferEmitted(n: NodeProto, known: (name: string) => ValueShape | undefined, out: Map<string, ValueShape>): void {
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
