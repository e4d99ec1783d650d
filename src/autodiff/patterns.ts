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
 *   LayerNorm:  μ = ReduceMean(x), d = x − μ, σ = √(ReduceMean(d²) + ε), y = d / σ [· γ] [+ β],
 *               or tf2onnx's y = x·m + (β − μ·m), m = Reciprocal(σ) [· γ]
 *   GELU:       y = ½ · x · (1 + erf(x / √2))                          (Gelu)
 *               y = ½ · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))    (Gelu, approximate=tanh)
 *               any grouping of the three factors, either operand order
 * (exports also write x − μ twice, cast it to its own type before squaring, or compute √2 as
 * Sqrt(2): all accepted).
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

/** A scalar constant, or the Sqrt of one (tf2onnx writes √2 as Sqrt(2)). */
function scalar(src: PatternSources, name: string): number | undefined {
  const v = src.constFloats(name);
  if (v) return v.length === 1 ? v[0] : undefined;
  const p = src.producer(name);
  if (p?.opType !== 'Sqrt' || p.domain !== '') return undefined;
  const inner = src.constFloats(p.input[0]!);
  return inner && inner.length === 1 && inner[0]! >= 0 ? Math.sqrt(inner[0]!) : undefined;
}

function spelled(opType: string, head: NodeProto, inputs: string[], attribute: NodeProto['attribute'], inner: NodeProto[]): SpelledOp {
  return { node: create(NodeProtoSchema, { opType, domain: '', name: head.name, input: inputs, output: [head.output[0]!], attribute }), inner };
}

/** y = ½ · x · (1 + erf(x / √2)) or its tanh form, `head` the outer of the two Muls. */
function gelu(head: NodeProto, src: PatternSources): SpelledOp | undefined {
  for (const k of [0, 1]) {
    const innerMul = producerOf(src, head.input[k]!, 'Mul');
    if (!innerMul) continue;
    const factors = [head.input[1 - k]!, ...innerMul.input];
    const halfAt = factors.findIndex((f) => near(scalar(src, f), 0.5));
    if (halfAt < 0) continue;
    const [f1, f2] = factors.filter((_, i) => i !== halfAt) as [string, string];
    for (const [x, c] of [[f1, f2], [f2, f1]] as const) {
      const add = producerOf(src, c, 'Add');
      const oneAt = add ? add.input.findIndex((i) => near(scalar(src, i), 1)) : -1;
      if (!add || oneAt < 0) continue;
      const t = add.input[1 - oneAt]!;
      const inner = [innerMul, add];
      if (erfOfScaledX(src, t, x, inner) && closed(src, head, inner)) return spelled('Gelu', head, [x], [], inner);
      inner.splice(2);
      if (tanhOfCubic(src, t, x, inner) && closed(src, head, inner)) return spelled('Gelu', head, [x], [makeAttribute('approximate', 'tanh')], inner);
    }
  }
  return undefined;
}

/** `t` = erf(x / √2) (Div by √2 or Mul by 1/√2); its nodes pushed onto `inner`. */
function erfOfScaledX(src: PatternSources, t: string, x: string, inner: NodeProto[]): boolean {
  const erf = producerOf(src, t, 'Erf');
  const scaled = erf && src.producer(erf.input[0]!);
  if (!scaled || scaled.domain !== '') return false;
  const xAt = scaled.input.indexOf(x);
  const by = xAt < 0 ? undefined : scalar(src, scaled.input[1 - xAt]!);
  if (!((scaled.opType === 'Div' && xAt === 0 && near(by, Math.SQRT2)) || (scaled.opType === 'Mul' && near(by, Math.SQRT1_2)))) return false;
  inner.push(erf, scaled);
  return true;
}

/** `t` = tanh(√(2/π) · (x + 0.044715 · x³)), x³ as Pow(x, 3); its nodes pushed onto `inner`. */
function tanhOfCubic(src: PatternSources, t: string, x: string, inner: NodeProto[]): boolean {
  const tanh = producerOf(src, t, 'Tanh');
  if (!tanh) return false;
  inner.push(tanh);
  // k · operand, either order: the operand's `op` producer (the Mul pushed onto `inner`).
  const scaledBy = (name: string, k: number, op: string): NodeProto | undefined => {
    const m = producerOf(src, name, 'Mul');
    const at = m ? m.input.findIndex((i) => near(scalar(src, i), k)) : -1;
    if (!m || at < 0) return undefined;
    inner.push(m);
    return producerOf(src, m.input[1 - at]!, op);
  };
  const sum = scaledBy(tanh.input[0]!, Math.sqrt(2 / Math.PI), 'Add');
  const xAt = sum ? sum.input.indexOf(x) : -1;
  if (!sum || xAt < 0) return false;
  inner.push(sum);
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

/** The producer of `name` if it is an `op` node of the default domain (readers checked later, by `closed`). */
function producerOf(src: PatternSources, name: string, op: string): NodeProto | undefined {
  const p = src.producer(name);
  return p && p.opType === op && p.domain === '' ? p : undefined;
}

/** Whether every value the pattern's inner nodes write is read only inside it and is no graph output. */
function closed(src: PatternSources, head: NodeProto, inner: readonly NodeProto[]): boolean {
  const nodes = new Set([head, ...inner]);
  return inner.every((n) => n.output.every((o) => !o || (!src.outputs.has(o) && (src.consumers.get(o) ?? []).every((c) => nodes.has(c)))));
}

/**
 * σ = √(mean((x − μ)²) + ε), μ = mean(x), written out, from σ's name: x, μ, ε, the first averaged
 * axis; the nodes are pushed onto `inner`. The squared x − μ may be cast to its own type first.
 */
function deviation(src: PatternSources, sigma: string, inner: NodeProto[]): { x: string; mu: string; eps: number; axis: number } | undefined {
  const sqrt = producerOf(src, sigma, 'Sqrt');
  const addEps = sqrt && producerOf(src, sqrt.input[0]!, 'Add');
  if (!sqrt || !addEps) return undefined;
  const epsAt = addEps.input.findIndex((i) => scalar(src, i) !== undefined);
  const eps = epsAt < 0 ? undefined : scalar(src, addEps.input[epsAt]!);
  const variance = epsAt < 0 ? undefined : producerOf(src, addEps.input[1 - epsAt]!, 'ReduceMean');
  if (eps === undefined || !(eps > 0) || !variance) return undefined;
  const sq = src.producer(variance.input[0]!);
  if (!sq || sq.domain !== '') return undefined;
  const isSquare = (sq.opType === 'Pow' && near(scalar(src, sq.input[1]!), 2)) || (sq.opType === 'Mul' && sq.input[1] === sq.input[0]);
  if (!isSquare) return undefined;
  inner.push(sqrt, addEps, variance, sq);
  let d = sq.input[0]!;
  const cast = producerOf(src, d, 'Cast');
  if (cast && attrInt(cast, 'to') === src.dtype(cast.input[0]!)) {
    inner.push(cast);
    d = cast.input[0]!;
  }
  const sub = producerOf(src, d, 'Sub');
  const mean = sub && producerOf(src, sub.input[1]!, 'ReduceMean');
  if (!sub || !mean || mean.input[0] !== sub.input[0]) return undefined;
  inner.push(sub, mean);
  const axis = trailingMeanAxis(mean, src);
  if (axis === undefined || trailingMeanAxis(variance, src) !== axis) return undefined;
  return { x: sub.input[0]!, mu: sub.input[1]!, eps, axis };
}

/** `node` = op(a, b) with one operand produced by a `want` node: that node and the other operand. */
function operandOf(src: PatternSources, node: NodeProto | undefined, want: string): { next: NodeProto; other: string } | undefined {
  if (!node) return undefined;
  for (const k of [0, 1]) {
    const next = producerOf(src, node.input[k]!, want);
    if (next) return { next, other: node.input[1 - k]! };
  }
  return undefined;
}

/**
 * LayerNorm written out, `head` its last node. Two spellings:
 *   PyTorch: y = (x − μ) / σ [· γ] [+ β]                     (head: the β Add, the γ Mul or the Div)
 *   TensorFlow (tf2onnx, "batchnorm"): m = γ / σ as Reciprocal(σ) [· γ];
 *            y = x · m + (β − μ · m)                          (head: the final Add)
 */
function layerNorm(head: NodeProto, src: PatternSources): SpelledOp | undefined {
  return torchLayerNorm(head, src) ?? tfLayerNorm(head, src);
}

function torchLayerNorm(head: NodeProto, src: PatternSources): SpelledOp | undefined {
  const inner: NodeProto[] = [];
  let cur: NodeProto | undefined = head;
  let bias: string | undefined;
  let scale: string | undefined;
  if (cur.opType === 'Add') {
    const a = operandOf(src, cur, 'Mul') ?? operandOf(src, cur, 'Div');
    if (!a) return undefined;
    bias = a.other;
    cur = a.next;
    inner.push(cur);
  }
  if (cur.opType === 'Mul') {
    const a = operandOf(src, cur, 'Div');
    if (!a) return undefined;
    scale = a.other;
    cur = a.next;
    inner.push(cur);
  }
  if (cur.opType !== 'Div' || cur.domain !== '') return undefined;
  const div = cur;
  const dev = deviation(src, div.input[1]!, inner);
  if (!dev) return undefined;
  // The numerator: the squared x − μ itself, or a second Sub(x, μ).
  const numerator = producerOf(src, div.input[0]!, 'Sub');
  if (!numerator || numerator.input[0] !== dev.x || numerator.input[1] !== dev.mu) return undefined;
  if (!inner.includes(numerator)) inner.push(numerator);
  return finishLayerNorm(head, src, inner, dev, scale, bias);
}

function tfLayerNorm(head: NodeProto, src: PatternSources): SpelledOp | undefined {
  if (head.opType !== 'Add' || head.domain !== '') return undefined;
  const inner: NodeProto[] = [];
  // head = x·m + (β − μ·m)
  for (const k of [0, 1]) {
    const xm = producerOf(src, head.input[k]!, 'Mul');
    const shift = producerOf(src, head.input[1 - k]!, 'Sub');
    if (!xm || !shift) continue;
    const muM = producerOf(src, shift.input[1]!, 'Mul');
    if (!muM) continue;
    const bias = shift.input[0]!;
    for (const j of [0, 1]) {
      const x = xm.input[j]!;
      const m = xm.input[1 - j]!;
      if (!muM.input.includes(m)) continue;
      const mu = muM.input[0] === m ? muM.input[1]! : muM.input[0]!;
      // m = Reciprocal(σ) · γ, or Reciprocal(σ) alone.
      const scaled = operandOf(src, src.producer(m)?.opType === 'Mul' ? src.producer(m) : undefined, 'Reciprocal');
      const recip = scaled ? scaled.next : producerOf(src, m, 'Reciprocal');
      if (!recip) continue;
      const found = [xm, shift, muM, ...(scaled ? [src.producer(m)!] : []), recip];
      const dev = deviation(src, recip.input[0]!, found);
      if (!dev || dev.x !== x || dev.mu !== mu) continue;
      inner.push(...found);
      return finishLayerNorm(head, src, inner, dev, scaled?.other, bias);
    }
  }
  return undefined;
}

/** The checks both spellings share, then the LayerNormalization node. */
function finishLayerNorm(head: NodeProto, src: PatternSources, inner: NodeProto[], dev: { x: string; eps: number; axis: number }, scale: string | undefined, bias: string | undefined): SpelledOp | undefined {
  if (!closed(src, head, inner)) return undefined;
  const xShape = src.shape(dev.x);
  if (!xShape) return undefined;
  // γ and β broadcast over the normalised axes only: shapes that are suffixes of them (or 1s).
  const normalized = xShape.slice(dev.axis);
  const produced = new Set([head, ...inner].flatMap((n) => n.output));
  for (const p of [scale, bias]) {
    if (p === undefined) continue;
    const s = src.shape(p);
    if (produced.has(p) || !s || s.length > normalized.length || s.some((v, i) => v !== 1 && v !== normalized[normalized.length - s.length + i])) return undefined;
  }
  const attribute = [
    makeAttribute('axis', dev.axis),
    makeAttribute('epsilon', float(dev.eps)),
    // The forward ran in x's own element type; so does the backward.
    makeAttribute('stash_type', 0),
  ];
  return spelled('LayerNormalization', head, [dev.x, scale ?? '', bias ?? ''], attribute, inner);
}
