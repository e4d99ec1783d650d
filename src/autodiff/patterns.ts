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
 *   GELU:       y = ½ · x · (1 + erf(x / √2))                          (Gelu)
 *               y = ½ · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))    (Gelu, approximate=tanh)
 *               any grouping of the three factors, either operand order
 * (exports also write x − μ twice, or cast it to its own type before squaring: both accepted).
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
  dtype(name: string): number | undefined;
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
      if (oneAt < 0) continue;
      const t = add.input[1 - oneAt]!;
      if (erfOfScaledX(src, t, x, inner, inside)) return spelled('Gelu', head, [x], [], inner);
      if (tanhOfCubic(src, t, x, inner, inside)) return spelled('Gelu', head, [x], [makeAttribute('approximate', 'tanh')], inner);
    }
  }
  return undefined;
}

/** `t` = erf(x / √2) (Div by √2 or Mul by 1/√2); its nodes pushed onto `inner`. */
function erfOfScaledX(src: PatternSources, t: string, x: string, inner: NodeProto[], inside: (n: NodeProto) => boolean): boolean {
  const erf = innerProducer(src, t, 'Erf', inside);
  if (!erf) return false;
  inner.push(erf);
  const scaled = src.producer(erf.input[0]!);
  if (!scaled || !innerProducer(src, erf.input[0]!, scaled.opType, inside)) return false;
  const xAt = scaled.input.indexOf(x);
  const by = xAt < 0 ? undefined : scalar(src, scaled.input[1 - xAt]!);
  if (!((scaled.opType === 'Div' && xAt === 0 && near(by, Math.SQRT2)) || (scaled.opType === 'Mul' && near(by, Math.SQRT1_2)))) return false;
  inner.push(scaled);
  return true;
}

/** `t` = tanh(√(2/π) · (x + 0.044715 · x³)), x³ as Pow(x, 3); its nodes pushed onto `inner`. */
function tanhOfCubic(src: PatternSources, t: string, x: string, inner: NodeProto[], inside: (n: NodeProto) => boolean): boolean {
  const tanh = innerProducer(src, t, 'Tanh', inside);
  if (!tanh) return false;
  inner.push(tanh);
  // scalar · operand, either order; the operand's producer must be read only inside.
  const scaledBy = (name: string, k: number, op: string): NodeProto | undefined => {
    const m = innerProducer(src, name, 'Mul', inside);
    if (!m) return undefined;
    const at = m.input.findIndex((i) => near(scalar(src, i), k));
    if (at < 0) return undefined;
    inner.push(m);
    const operand = innerProducer(src, m.input[1 - at]!, op, inside);
    return operand;
  };
  const sum = scaledBy(tanh.input[0]!, Math.sqrt(2 / Math.PI), 'Add');
  if (!sum) return false;
  inner.push(sum);
  const xAt = sum.input.indexOf(x);
  if (xAt < 0) return false;
  const cube = scaledBy(sum.input[1 - xAt]!, 0.044715, 'Pow');
  if (!cube || cube.input[0] !== x || !near(scalar(src, cube.input[1]!), 3)) return false;
  inner.push(cube);
  return true;
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
  // μ may be read by a second Sub(x, μ) too: its readers are checked at the end.
  const mean = src.producer(sub.input[1]!);
  if (!mean || mean.opType !== 'ReduceMean' || mean.domain !== '' || mean.input[0] !== x || src.outputs.has(sub.input[1]!)) return undefined;
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
  const sq = src.producer(variance.input[0]!);
  if (!sq || !innerProducer(src, variance.input[0]!, sq.opType, inside)) return undefined;
  inner.push(sq);
  // The squared value: x − μ, perhaps cast to its own type, perhaps a second Sub(x, μ).
  let d = sq.input[0]!;
  const cast = src.producer(d);
  if (cast?.opType === 'Cast' && attrInt(cast, 'to') === src.dtype(cast.input[0]!) && innerProducer(src, d, 'Cast', inside)) {
    inner.push(cast);
    d = cast.input[0]!;
  }
  const isSquare = (sq.opType === 'Pow' && near(scalar(src, sq.input[1]!), 2)) || (sq.opType === 'Mul' && sq.input[1] === sq.input[0]);
  if (!isSquare) return undefined;
  if (d !== sub.output[0]) {
    const again = src.producer(d);
    if (!again || again.opType !== 'Sub' || again.domain !== '' || again.input[0] !== x || again.input[1] !== sub.input[1] || src.outputs.has(d)) return undefined;
    inner.push(again);
  }
  // x − μ is read by the square and the Div only; the statistics by nothing else.
  if (![d, sub.output[0]!, sub.input[1]!].every((v) => (src.consumers.get(v) ?? []).every(inside))) return undefined;
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
