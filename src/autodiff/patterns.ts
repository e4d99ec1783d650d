/**
 * Decomposed ops the backward differentiates as the op they spell. Exports below opset 17 / 20
 * write LayerNorm and the exact GELU out in elementary ops; differentiated node by node, their
 * backward reads every intermediate (x − μ, (x − μ)², the normalised value, x/√2, erf, …), so
 * each stays alive from the forward to the backward, a few activations per layer, and ONNX
 * Runtime cannot fuse the forward into its LayerNormalization / Gelu kernels either, since the
 * intermediates have readers outside the pattern. Recognised here, the whole pattern is
 * differentiated by the rule of the op it spells (LayerNormalization, Gelu), which reads only
 * the pattern's input (and γ, β): the intermediates are freed in the forward and ONNX Runtime
 * fuses it.
 *
 * A pattern is taken only when it is exactly the op: the constants match (√2 or 1/√2, 1, ½,
 * exponent 2), the reductions are over the trailing axes with keepdims, and no intermediate is
 * read outside the pattern or is a graph output. Anything else is differentiated node by node,
 * as before.
 *
 *   LayerNorm:  μ = ReduceMean(x), d = x − μ, v = ReduceMean(d²), y = d / √(v + ε) [· γ] [+ β]
 *   GELU (erf): y = ½ · x · (1 + erf(x / √2))   (any grouping of the three factors)
 */
import { create, NodeProtoSchema, type NodeProto } from '../onnx/proto.ts';
import { attrInt, attrInts, float, makeAttribute } from '../onnx/attributes.ts';
import type { StaticShape } from '../onnx/shapes.ts';

/** The op a recognised pattern spells, standing in for the pattern's last node. */
export interface SpelledOp {
  /** A node of the spelled op: the pattern's inputs, and its last node's output and name. */
  node: NodeProto;
  /** The pattern's other nodes (their outputs are read only inside the pattern). */
  inner: NodeProto[];
}

export interface PatternSources {
  /** The nodes reading each value (the whole graph). */
  consumers: ReadonlyMap<string, readonly NodeProto[]>;
  /** Names of the graph outputs. */
  outputs: ReadonlySet<string>;
  producer(name: string): NodeProto | undefined;
  /** A constant's values (an initializer or a Constant node), undefined for run-time values. */
  constFloats(name: string): number[] | undefined;
  /** Constant integer values (for opset-18 ReduceMean axes inputs). */
  constInts(name: string): number[] | undefined;
  shape(name: string): StaticShape | undefined;
}

/** Recognised patterns among `nodes`, keyed by each pattern's last node. */
export function findSpelledOps(nodes: readonly NodeProto[], src: PatternSources): Map<NodeProto, SpelledOp> {
  const found = new Map<NodeProto, SpelledOp>();
  const claimed = new Set<NodeProto>();
  // Last nodes first, so a pattern is matched from its real end.
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (claimed.has(n) || n.domain !== '') continue;
    const p = (n.opType === 'Mul' ? gelu(n, src) : undefined) ?? (n.opType === 'Add' || n.opType === 'Mul' || n.opType === 'Div' ? layerNorm(n, src) : undefined);
    if (!p || p.inner.some((m) => claimed.has(m))) continue;
    for (const m of [n, ...p.inner]) claimed.add(m);
    found.set(n, p);
  }
  return found;
}

/** Within relative 1e-6 (exporters write √2 and friends as float32). */
function near(v: number | undefined, want: number): boolean {
  return v !== undefined && Math.abs(v - want) <= 1e-6 * Math.abs(want);
}

function scalar(src: PatternSources, name: string): number | undefined {
  const v = src.constFloats(name);
  return v && v.length === 1 ? v[0] : undefined;
}

/** The producer of `name` if it is an `op` node and every reader of `name` is `inside`. */
function innerProducer(src: PatternSources, name: string, op: string, inside: (n: NodeProto) => boolean): NodeProto | undefined {
  const p = src.producer(name);
  if (!p || p.opType !== op || p.domain !== '' || src.outputs.has(name)) return undefined;
  return (src.consumers.get(name) ?? []).every(inside) ? p : undefined;
}

function spelled(opType: string, head: NodeProto, inputs: string[], attribute: NodeProto['attribute'], inner: NodeProto[]): SpelledOp {
  return { node: create(NodeProtoSchema, { opType, domain: '', name: head.name, input: inputs, output: [head.output[0]!], attribute }), inner };
}

/** A set of pattern nodes that grows as the match proceeds. */
function patternOf(head: NodeProto) {
  const inner: NodeProto[] = [];
  return { inner, inside: (n: NodeProto) => n === head || inner.includes(n) };
}

/** y = ½ · x · (1 + erf(x / √2)), `head` the outer of the two Muls. */
function gelu(head: NodeProto, src: PatternSources): SpelledOp | undefined {
  for (const k of [0, 1]) {
    const innerMul = innerProducer(src, head.input[k]!, 'Mul', (n) => n === head);
    if (!innerMul) continue;
    const factors = [head.input[1 - k]!, ...innerMul.input];
    const halfAt = factors.findIndex((f) => near(scalar(src, f), 0.5));
    if (halfAt < 0) continue;
    const [f1, f2] = factors.filter((_, i) => i !== halfAt) as [string, string];
    for (const [x, c] of [[f1, f2], [f2, f1]] as const) {
      const { inner, inside } = patternOf(head);
      inner.push(innerMul);
      const add = innerProducer(src, c, 'Add', inside);
      if (!add) continue;
      inner.push(add);
      const oneAt = add.input.findIndex((i) => near(scalar(src, i), 1));
      const erf = oneAt < 0 ? undefined : innerProducer(src, add.input[1 - oneAt]!, 'Erf', inside);
      if (!erf) continue;
      inner.push(erf);
      const scaled = src.producer(erf.input[0]!);
      if (!scaled || !innerProducer(src, erf.input[0]!, scaled.opType, inside)) continue;
      const xAt = scaled.input.indexOf(x);
      const by = xAt < 0 ? undefined : scalar(src, scaled.input[1 - xAt]!);
      const ok = (scaled.opType === 'Div' && xAt === 0 && near(by, Math.SQRT2)) || (scaled.opType === 'Mul' && near(by, Math.SQRT1_2));
      if (!ok) continue;
      inner.push(scaled);
      return spelled('Gelu', head, [x], [], inner);
    }
  }
  return undefined;
}

/** The first of the trailing axes a ReduceMean (keepdims 1) averages over; undefined otherwise. */
function trailingMeanAxis(n: NodeProto, src: PatternSources): number | undefined {
  if (attrInt(n, 'keepdims', 1) !== 1) return undefined;
  const rank = src.shape(n.input[0]!)?.length;
  if (rank === undefined) return undefined;
  const axes = n.input[1] ? src.constInts(n.input[1]) : attrInts(n, 'axes');
  if (!axes || axes.length === 0) return undefined;
  const norm = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (norm.some((a, i) => a !== rank - norm.length + i)) return undefined;
  return norm[0];
}

/**
 * `node` = op(v, p) in either order with v produced by one of `ops` and read only inside the
 * pattern: that producer and p (γ or β).
 */
function affine(node: NodeProto, ops: readonly string[], src: PatternSources, inside: (n: NodeProto) => boolean): { next: NodeProto; param: string } | undefined {
  for (const k of [0, 1]) {
    for (const op of ops) {
      const next = innerProducer(src, node.input[k]!, op, inside);
      if (next) return { next, param: node.input[1 - k]! };
    }
  }
  return undefined;
}

/** LayerNorm written out, `head` its last node (the β Add, the γ Mul, or the Div). */
function layerNorm(head: NodeProto, src: PatternSources): SpelledOp | undefined {
  const { inner, inside } = patternOf(head);
  let cur = head;
  let bias: string | undefined;
  let scale: string | undefined;
  if (cur.opType === 'Add') {
    const a = affine(cur, ['Mul', 'Div'], src, inside);
    if (!a) return undefined;
    bias = a.param;
    cur = a.next;
    inner.push(cur);
  }
  if (cur.opType === 'Mul') {
    const a = affine(cur, ['Div'], src, inside);
    if (!a) return undefined;
    scale = a.param;
    cur = a.next;
    inner.push(cur);
  }
  if (cur.opType !== 'Div') return undefined;
  const div = cur;
  // x − μ is read by the square too: its readers are checked once the square is found.
  const sub = src.producer(div.input[0]!);
  if (!sub || sub.opType !== 'Sub' || sub.domain !== '' || src.outputs.has(div.input[0]!)) return undefined;
  inner.push(sub);
  const x = sub.input[0]!;
  const mean = innerProducer(src, sub.input[1]!, 'ReduceMean', inside);
  if (!mean || mean.input[0] !== x) return undefined;
  inner.push(mean);
  const sqrt = innerProducer(src, div.input[1]!, 'Sqrt', inside);
  if (!sqrt) return undefined;
  inner.push(sqrt);
  const addEps = innerProducer(src, sqrt.input[0]!, 'Add', inside);
  if (!addEps) return undefined;
  inner.push(addEps);
  const epsAt = addEps.input.findIndex((i) => scalar(src, i) !== undefined);
  const eps = epsAt < 0 ? undefined : scalar(src, addEps.input[epsAt]!);
  if (eps === undefined || !(eps > 0)) return undefined;
  const variance = innerProducer(src, addEps.input[1 - epsAt]!, 'ReduceMean', inside);
  if (!variance) return undefined;
  inner.push(variance);
  const d = sub.output[0]!;
  const sq = src.producer(variance.input[0]!);
  const isSquare = !!sq && ((sq.opType === 'Pow' && sq.input[0] === d && near(scalar(src, sq.input[1]!), 2)) || (sq.opType === 'Mul' && sq.input[0] === d && sq.input[1] === d));
  if (!sq || !isSquare || !innerProducer(src, variance.input[0]!, sq.opType, inside)) return undefined;
  inner.push(sq);
  // x − μ is read by the square and the Div only; the statistics by nothing else.
  if (!(src.consumers.get(d) ?? []).every(inside)) return undefined;
  const axis = trailingMeanAxis(mean, src);
  if (axis === undefined || trailingMeanAxis(variance, src) !== axis) return undefined;
  const xShape = src.shape(x);
  if (!xShape) return undefined;
  // γ and β broadcast over the normalised axes only: shapes that are suffixes of them (or 1s).
  const normalized = xShape.slice(axis);
  const produced = new Set([head, ...inner].flatMap((n) => n.output));
  for (const p of [scale, bias]) {
    if (p === undefined) continue;
    const s = src.shape(p);
    if (produced.has(p) || !s || s.length > normalized.length || s.some((v, i) => v !== 1 && v !== normalized[normalized.length - s.length + i])) return undefined;
  }
  const attribute = [
    makeAttribute('axis', axis),
    makeAttribute('epsilon', float(eps)),
    // The forward ran in x's own element type; so does the backward.
    makeAttribute('stash_type', 0),
  ];
  return spelled('LayerNormalization', head, [x, scale ?? '', bias ?? ''], attribute, inner);
}
