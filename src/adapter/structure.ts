/**
 * Structural analysis: the transformer blocks of a graph recognised from its operators alone,
 * so layers get module names (and PEFT's default targets) when node names carry no module path
 * (legacy numbered torch exports, keras2onnx, ONNX Runtime's fused graphs).
 *
 * Attention: a Softmax whose input comes from an activation × activation product Q·Kᵀ (through
 * scaling Mul/Div, mask Add/Where, casts) and whose output is the left operand of another one,
 * P·V; or a fused attention op (com.microsoft Attention, MultiHeadAttention, GroupQueryAttention,
 * ai.onnx Attention). The projections are found by walking back from Q, K and V through head
 * reshapes/transposes, bias adds, scaling, Split/Slice of a packed q/k/v, rotary embeddings and
 * past-key/value concatenation to the first weight-holding node; the output projection is the
 * first one after the context (through the head merge). K and V read from another stream than Q
 * (or taken from graph inputs, as cached encoder states) make it cross-attention.
 *
 * MLP: a weight-holding node whose input is an elementwise function with an activation of one
 * (fc1) or two (gate, up) other projections, and whose output joins the residual stream.
 *
 * Layers: blocks in topological order along the residual stream; a self-attention after an MLP
 * starts the next layer (unless both read the same stream: a parallel block).
 */
import type { NodeProto } from '../onnx/proto.ts';
import type { GraphFacts } from './graph-facts.ts';
import { opLabel } from './linear-ops.ts';

export type BlockKind = 'attention' | 'cross_attention' | 'mlp';
export type Role = 'query' | 'key' | 'value' | 'qkv' | 'kv' | 'qk' | 'qv' | 'output' | 'fc1' | 'fc2' | 'gate' | 'up' | 'down';

/** Where a weight-holding node sits in the recognised structure. */
export interface StructuralRole {
  /** Layer index over the whole model, in residual-stream order. */
  layer: number;
  /** Set when the model has an encoder and a decoder stack (the layers with cross-attention). */
  stack?: 'encoder' | 'decoder';
  /** Layer index within its stack (= `layer` without stacks). */
  index: number;
  block: BlockKind;
  role: Role;
  /** The recognised pattern, short (`Q·Kᵀ → Softmax → ·V`, `Attention (com.microsoft)`, `MLP fc1 → Erf → fc2`). */
  via: string;
  /** How this node was placed in it, naming the nodes involved (for `inspect --json`). */
  pattern: string;
}

export interface StructureSummary {
  layers: number;
  attention: number;
  crossAttention: number;
  mlp: number;
  /** Self-attention blocks whose q, k, v come from one packed projection (or a fused Attention weight). */
  packedQkv: number;
  /** Self-attention blocks with separate query and value projections. */
  separateQkv: number;
  /** Fused attention ops seen (`Attention (com.microsoft)`, …). */
  fusedOps: string[];
  /** Self-attention blocks whose projections read the residual stream itself (norm after the residual Add). */
  postNorm: number;
  /** … or a normalised copy of it (norm before the block). */
  preNorm: number;
  gatedMlp: number;
  plainMlp: number;
  /** Rotary position embeddings on Q/K (rotate-half Neg/Concat, RotaryEmbedding, do_rotary). */
  rotary: boolean;
  /** Token and position embeddings looked up and summed (learned absolute positions). */
  learnedPositions: boolean;
  /** Attention blocks whose scores are not scaled (no constant Mul/Div on Q or Q·Kᵀ; T5). */
  unscaled: number;
}

export interface Structure {
  roles: Map<NodeProto, StructuralRole>;
  /** The activation × activation products of recognised attention blocks (`Q·Kᵀ`, `P·V`). */
  products: Map<NodeProto, string>;
  summary: StructureSummary;
}

// ---- op sets -----------------------------------------------------------------------------

const RESHAPES = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity', 'Cast', 'Dropout']);
const NORMS = new Set(['LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization']);
const SKIP_NORMS = new Set(['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);
const ARITH = new Set(['Add', 'Sub', 'Mul', 'Div']);
/** From a score/context operand back to its projection. */
const PROJECTION_PATH = new Set([...RESHAPES, ...ARITH, 'Split', 'Slice', 'Gather', 'Concat', 'Neg', 'Expand', 'Tile', 'RotaryEmbedding']);
/** From the Softmax input back to Q·Kᵀ. */
const SCORE_PATH = new Set([...ARITH, 'Where', 'Cast', 'Identity', 'Reshape', 'Tanh', 'Clip', 'Max', 'Min', 'Dropout', 'Expand']);
/** From the Softmax output to P·V. */
const PROBS_PATH = new Set(['Cast', 'Identity', 'Dropout', 'Where', 'Mul', 'Reshape']);
const ACTIVATIONS = new Set([
  'Erf', 'Tanh', 'Sigmoid', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'Mish', 'Gelu', 'Clip',
  'FastGelu', 'BiasGelu', 'QuickGelu', 'BiasFastGelu', 'BiasSplitGelu',
]);
const MLP_PATH = new Set([...RESHAPES, ...ARITH, ...ACTIVATIONS, 'Pow', 'Neg', 'Max', 'Min', 'Exp', 'Split', 'Slice']);
/** Elementwise and reducing ops a decomposed LayerNorm/RMSNorm or activation is built from. */
const ELEMENTWISE = new Set([...ARITH, 'Pow', 'Sqrt', 'Reciprocal', 'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'Neg', 'Abs', 'Cast', 'Identity', 'Erf', 'Tanh', 'Sigmoid', 'Relu', 'Exp']);

/** Fused attention ops: which inputs are Q, K, V (Attention (com.microsoft) holds its packed weight instead). */
type FusedIo = { q: number; k: number; v: number } | 'packed-weight';
const FUSED_ATTENTION: ReadonlyMap<string, FusedIo> = new Map<string, FusedIo>([
  ['com.microsoft:Attention', 'packed-weight'],
  ['com.microsoft:MultiHeadAttention', { q: 0, k: 1, v: 2 }],
  ['com.microsoft:GroupQueryAttention', { q: 0, k: 1, v: 2 }],
  ['com.microsoft:DecoderMaskedMultiHeadAttention', { q: 0, k: 1, v: 2 }],
  ['com.microsoft:PackedMultiHeadAttention', { q: 0, k: 1, v: 2 }],
  [':Attention', { q: 0, k: 1, v: 2 }],
]);

const label = (n: NodeProto) => `${opLabel(n)} '${n.name || n.output[0]}'`;
const isDefault = (n: NodeProto) => n.domain === '' || n.domain === 'ai.onnx';
const key = (n: NodeProto) => `${isDefault(n) ? '' : n.domain}:${n.opType}`;

// ---- walks -------------------------------------------------------------------------------

interface Trace {
  projections: NodeProto[];
  graphInputs: string[];
  /** Nodes the walk passed through. */
  nodes: NodeProto[];
  /** Nodes that stopped the walk (not in the allowed set). */
  blocked: NodeProto[];
  overflow: boolean;
}

/** Walks back from a value through `through` nodes, stopping at projections, graph inputs and other nodes. */
function traceBack(f: GraphFacts, start: string, through: (n: NodeProto) => boolean, limit = 48): Trace {
  const t: Trace = { projections: [], graphInputs: [], nodes: [], blocked: [], overflow: false };
  const seenValues = new Set<string>();
  const seenNodes = new Set<NodeProto>();
  const stack = [start];
  while (stack.length) {
    const v = stack.pop()!;
    if (seenValues.has(v) || f.isConst(v)) continue;
    seenValues.add(v);
    const p = f.producer(v);
    if (!p) {
      t.graphInputs.push(v);
      continue;
    }
    if (seenNodes.has(p)) continue;
    seenNodes.add(p);
    if (f.projections.has(p)) t.projections.push(p);
    else if (!through(p)) t.blocked.push(p);
    else {
      t.nodes.push(p);
      if (t.nodes.length > limit) {
        t.overflow = true;
        break;
      }
      stack.push(...f.liveDataInputs(p));
    }
  }
  return t;
}

/**
 * Nodes reached forward from `start` that `pick` accepts (by the input index the value enters),
 * passing only through nodes `through` accepts.
 */
function forwardTo(f: GraphFacts, start: string, through: (n: NodeProto, input: number) => boolean, pick: (n: NodeProto, input: number) => boolean, limit = 10): Array<{ node: NodeProto; input: number }> {
  const found: Array<{ node: NodeProto; input: number }> = [];
  const seen = new Set<string>();
  let frontier = [start];
  for (let step = 0; step < limit && frontier.length; step++) {
    const next: string[] = [];
    for (const v of frontier) {
      if (seen.has(v)) continue;
      seen.add(v);
      for (const c of f.consumers(v)) {
        c.input.forEach((name, i) => {
          if (name !== v) return;
          if (pick(c, i)) found.push({ node: c, input: i });
          else if (through(c, i)) next.push(...c.output.filter(Boolean));
        });
      }
    }
    frontier = next;
  }
  return found;
}

/** The value `v` is a reshape/cast/transpose of. */
function throughReshapes(f: GraphFacts, v: string): string {
  for (let i = 0; i < 16; i++) {
    const p = f.producer(v);
    if (!p || !RESHAPES.has(p.opType) || !p.input[0]) return v;
    v = p.input[0];
  }
  return v;
}

/**
 * The one live value a small elementwise cone ending at `v` is a function of, with the ops it
 * uses: how a decomposed LayerNorm/RMSNorm (ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add) or activation
 * (Div/Erf/Add/Mul) is recognised as a unary function of its input.
 */
export function singleSource(f: GraphFacts, v: string, limit = 24): { source: string; ops: Set<string> } | undefined {
  const leaves = new Set<string>();
  const ops = new Set<string>();
  const seen = new Set<string>();
  const stack = [v];
  let nodes = 0;
  while (stack.length) {
    const x = stack.pop()!;
    if (seen.has(x) || f.isConst(x)) continue;
    seen.add(x);
    const p = f.producer(x);
    if (!p || !ELEMENTWISE.has(p.opType) || f.projections.has(p)) {
      leaves.add(x);
      continue;
    }
    if (++nodes > limit) return undefined;
    ops.add(p.opType);
    stack.push(...f.liveDataInputs(p));
  }
  if (leaves.size !== 1 || leaves.has(v)) return undefined;
  return { source: [...leaves][0]!, ops };
}

/** The residual stream a block reads: its input through reshapes and one normalisation. */
function streamOf(f: GraphFacts, v: string): string {
  let x = throughReshapes(f, v);
  const p = f.producer(x);
  if (!p) return x;
  if (NORMS.has(p.opType) && p.input[0]) return throughReshapes(f, p.input[0]);
  // SkipLayerNormalization: output 0 = LN(a + b), output 3 = a + b (the stream itself).
  if (SKIP_NORMS.has(p.opType)) return p.output[3] || p.output[0]!;
  const cone = singleSource(f, x);
  if (cone?.ops.has('ReduceMean') || cone?.ops.has('ReduceSumSquare')) x = throughReshapes(f, cone.source);
  return x;
}

/** The residual join after a block's output projection: the Add (or SkipLayerNorm) and its other operand. */
function residualJoin(f: GraphFacts, out: NodeProto): { node: NodeProto; other: string } | undefined {
  const biasLike = (n: NodeProto, input: number) =>
    RESHAPES.has(n.opType) ? input === 0 : ARITH.has(n.opType) ? n.input.every((x, i) => i === input || !x || f.isConst(x)) : false;
  const join = (n: NodeProto, input: number) =>
    (n.opType === 'Add' && isDefault(n) && n.input.length === 2 && n.input.every((x) => x && !f.isConst(x))) || (SKIP_NORMS.has(n.opType) && input <= 1);
  const hits = forwardTo(f, out.output[0] ?? '', biasLike, join, 8);
  if (hits.length !== 1) return undefined;
  const { node, input } = hits[0]!;
  return { node, other: node.input[input === 0 ? 1 : 0]! };
}

// ---- attention ---------------------------------------------------------------------------

interface Block {
  kind: BlockKind;
  /** Short name of the recognised pattern. */
  via: string;
  roles: Map<NodeProto, { role: Role; pattern: string }>;
  /** Topological position of the first projection. */
  position: number;
  /** The residual stream the block reads. */
  stream: string;
  rotary?: boolean;
  packed?: boolean;
  separate?: boolean;
  postNorm?: boolean;
  fused?: string;
  gated?: boolean;
  /** Q or Q·Kᵀ is scaled by a constant (attention blocks). */
  scaled?: boolean;
  /** The score and context products of an unfused attention block. */
  products?: Map<NodeProto, string>;
}

/** An activation × activation product (Q·Kᵀ or P·V): MatMul, FusedMatMul or a two-operand Einsum. */
const isActivationMatMul = (f: GraphFacts, n: NodeProto) =>
  ((isDefault(n) && (n.opType === 'MatMul' || (n.opType === 'Einsum' && n.input.length === 2))) || (n.opType === 'FusedMatMul' && n.domain === 'com.microsoft')) &&
  !f.projections.has(n) &&
  !!n.input[0] &&
  !!n.input[1] &&
  !f.isConst(n.input[0]) &&
  !f.isConst(n.input[1]);

/** Role of a projection by which of Q, K, V it produces. */
function roleOf(letters: string): Role {
  return ({ q: 'query', k: 'key', v: 'value', qkv: 'qkv', kv: 'kv', qk: 'qk', qv: 'qv' } as const)[letters as 'q'] ?? 'qkv';
}

/** The single projection a Q/K/V operand comes from, walking back through head plumbing. */
function projectionOf(f: GraphFacts, v: string): { proj?: NodeProto; trace: Trace } {
  const through = (n: NodeProto) => {
    if (PROJECTION_PATH.has(n.opType)) return true;
    // A per-head q/k norm directly on the projection (Qwen3, OLMo): pass it, but never a
    // block's input norm (that would walk into the residual stream).
    if (!NORMS.has(n.opType) || !n.input[0]) return false;
    const p = f.producer(throughReshapes(f, n.input[0]));
    return !!p && f.projections.has(p);
  };
  const trace = traceBack(f, v, through);
  const proj = !trace.overflow && trace.projections.length === 1 ? trace.projections[0] : undefined;
  return { proj, trace };
}

/** A Mul/Div by a constant (attention scaling). */
const scales = (f: GraphFacts, n: NodeProto) => (n.opType === 'Mul' || n.opType === 'Div') && n.input.some((x) => !!x && f.isConst(x));

const hasRotary = (t: Trace) => t.nodes.some((n) => n.opType === 'RotaryEmbedding') || (t.nodes.some((n) => n.opType === 'Neg') && t.nodes.some((n) => n.opType === 'Concat'));

/**
 * One attention block from its Q, K, V operands (K/V may be absent) and its output value, or
 * from a fused op's packed q/k/v weight. `anchor` names the recognised core for the patterns.
 */
function attentionBlock(
  f: GraphFacts,
  anchor: string,
  operands: { q?: string; k?: string; v?: string },
  out: string,
  via: string,
  extra: { fused?: string; packedNode?: NodeProto; rotary?: boolean; scaled?: boolean } = {},
): Block | undefined {
  const letters = new Map<NodeProto, string>();
  const traces = new Map<string, Trace>();
  if (extra.packedNode) letters.set(extra.packedNode, 'qkv');
  for (const letter of ['q', 'k', 'v'] as const) {
    const value = operands[letter];
    if (!value) continue;
    const { proj, trace } = projectionOf(f, value);
    traces.set(letter, trace);
    if (proj) letters.set(proj, (letters.get(proj) ?? '') + letter);
  }
  const qProj = [...letters].find(([, l]) => l.includes('q'))?.[0];
  if (!qProj) return undefined;
  const dataOf = (n: NodeProto) => n.input[f.projections.get(n)!.dataInput]!;
  const qRoot = throughReshapes(f, dataOf(qProj));
  const kvProjs = [...letters].filter(([, l]) => !l.includes('q')).map(([n]) => n);
  // Cross-attention: K/V projected from another stream than Q, or given as graph inputs
  // (cached encoder states) with no projection at all.
  const kTrace = traces.get('k');
  const cross =
    kvProjs.some((n) => throughReshapes(f, dataOf(n)) !== qRoot) ||
    (!letters.get(qProj)!.includes('k') && kvProjs.length === 0 && !!kTrace && kTrace.projections.length === 0 && kTrace.graphInputs.length > 0);
  const roles = new Map<NodeProto, { role: Role; pattern: string }>();
  for (const [node, l] of letters) {
    const what =
      node === extra.packedNode
        ? `packed q/k/v weight of ${anchor}`
        : l.length > 1
          ? `packed projection split into ${[...l].map((c) => c.toUpperCase()).join(', ')} of ${anchor}`
          : `projects ${l.toUpperCase()} of ${anchor}`;
    roles.set(node, { role: roleOf(l), pattern: what });
  }
  const outs = forwardTo(
    f,
    out,
    (n, i) => RESHAPES.has(n.opType) && i === 0,
    (n, i) => f.projections.has(n) && i === f.projections.get(n)!.dataInput,
    8,
  );
  const outProj = outs.length === 1 ? outs[0]!.node : undefined;
  if (outProj && !roles.has(outProj)) roles.set(outProj, { role: 'output', pattern: `output projection after ${anchor}` });
  const position = Math.min(...[...letters.keys()].map((n) => f.position.get(n) ?? 0));
  const join = outProj ? residualJoin(f, outProj) : undefined;
  const forms = [...letters.values()];
  return {
    kind: cross ? 'cross_attention' : 'attention',
    via,
    roles,
    position,
    stream: streamOf(f, dataOf(qProj)),
    rotary: !!extra.rotary || [...traces.values()].some(hasRotary),
    scaled: !!extra.scaled || (traces.get('q')?.nodes.some((n) => scales(f, n)) ?? false),
    packed: letters.get(qProj)!.length === 3,
    separate: forms.includes('q') && forms.includes('v'),
    ...(join ? { postNorm: throughReshapes(f, join.other) === qRoot } : {}),
    ...(extra.fused ? { fused: extra.fused } : {}),
  };
}

/** Attention built from standard ops: Q·Kᵀ → Softmax → P·V. */
function unfusedAttention(f: GraphFacts, softmax: NodeProto): Block | undefined {
  const scoreTrace = traceBack(f, softmax.input[0] ?? '', (n) => SCORE_PATH.has(n.opType) && !isActivationMatMul(f, n), 16);
  if (scoreTrace.projections.length > 0 || scoreTrace.overflow) return undefined;
  const scores = scoreTrace.blocked.filter((n) => isActivationMatMul(f, n));
  if (scores.length !== 1) return undefined;
  const score = scores[0]!;
  const ctx = forwardTo(
    f,
    softmax.output[0] ?? '',
    (n) => PROBS_PATH.has(n.opType),
    (n, i) => isActivationMatMul(f, n) && i === 0,
    6,
  );
  if (ctx.length !== 1) return undefined;
  const context = ctx[0]!.node;
  const anchor = `Q·Kᵀ (${label(score)}) → Softmax → ·V (${label(context)})`;
  const scaled = scoreTrace.nodes.some((n) => scales(f, n)) || (score.opType === 'FusedMatMul' && score.attribute.some((a) => a.name === 'alpha' && a.f !== 1));
  const block = attentionBlock(f, anchor, { q: score.input[0]!, k: score.input[1]!, v: context.input[1]! }, context.output[0]!, 'Q·Kᵀ → Softmax → ·V', { scaled });
  if (block) block.products = new Map([[score, 'Q·Kᵀ'], [context, 'P·V']]);
  return block;
}

/** A fused attention op. */
function fusedAttention(f: GraphFacts, node: NodeProto): Block | undefined {
  const io = FUSED_ATTENTION.get(key(node));
  if (!io) return undefined;
  const anchor = label(node);
  const rotary = node.attribute.some((a) => a.name === 'do_rotary' && Number(a.i) === 1);
  // The fused ops scale by 1/√head_size unless a `scale` attribute says otherwise.
  const scaled = !node.attribute.some((a) => a.name === 'scale' && a.f === 1);
  if (io === 'packed-weight') {
    if (!f.projections.has(node)) return undefined;
    return attentionBlock(f, anchor, {}, node.output[0]!, opLabel(node), { fused: opLabel(node), packedNode: node, rotary, scaled });
  }
  const q = node.input[io.q];
  if (!q) return undefined;
  // MultiHeadAttention/GroupQueryAttention with no key input take packed q/k/v as `query`.
  const k = node.input[io.k] || undefined;
  const v = node.input[io.v] || undefined;
  return attentionBlock(f, anchor, k ? { q, k, ...(v ? { v } : {}) } : { q, k: q, v: q }, node.output[0]!, opLabel(node), { fused: opLabel(node), rotary, scaled });
}

// ---- MLP ---------------------------------------------------------------------------------

/**
 * The MLP whose last layer is `down`, if it is one: its input an elementwise function with an
 * activation of one projection (fc1) or of two (gate, up), its output joining the residual stream.
 */
function mlpBlock(f: GraphFacts, down: NodeProto, taken: ReadonlySet<NodeProto>): Block | undefined {
  const spec = f.projections.get(down)!;
  const trace = traceBack(f, down.input[spec.dataInput]!, (n) => MLP_PATH.has(n.opType));
  if (trace.overflow || trace.blocked.length || trace.graphInputs.length) return undefined;
  const sources = trace.projections;
  if (sources.length === 0 || sources.length > 2 || sources.some((s) => taken.has(s) || key(s) === 'com.microsoft:Attention')) return undefined;
  const acts = [...new Set(trace.nodes.filter((n) => ACTIVATIONS.has(n.opType)).map((n) => n.opType))];
  const fusedAct = sources.some((s) => s.opType === 'GemmFastGelu');
  if (acts.length === 0 && !fusedAct) return undefined;
  const join = residualJoin(f, down);
  if (!join) return undefined;
  const actText = fusedAct ? 'GemmFastGelu' : acts.join('/');
  const roles = new Map<NodeProto, { role: Role; pattern: string }>();
  let gated = false;
  let via = `MLP fc1 → ${actText} → fc2`;
  if (sources.length === 1) {
    const up = sources[0]!;
    roles.set(up, { role: 'fc1', pattern: `MLP: fc1 → ${actText} → fc2 (${label(down)}) → residual` });
    roles.set(down, { role: 'fc2', pattern: `MLP: fc1 (${label(up)}) → ${actText} → fc2 → residual` });
  } else {
    // Gated MLP: act(gate) · up. The gate is the source whose path to the product has the activation.
    const inTrace = new Set(trace.nodes);
    const activated = sources.map((s) => pathHasActivation(f, s, inTrace));
    if (activated[0] === activated[1]) return undefined;
    const gate = activated[0] ? sources[0]! : sources[1]!;
    const up = activated[0] ? sources[1]! : sources[0]!;
    const form = `gated MLP: ${actText}(gate) · up → down`;
    roles.set(gate, { role: 'gate', pattern: `${form} (gate: ${label(gate)})` });
    roles.set(up, { role: 'up', pattern: `${form} (up: ${label(up)})` });
    roles.set(down, { role: 'down', pattern: `${form} (down: ${label(down)})` });
    gated = true;
    via = `gated MLP ${actText}(gate) · up → down`;
  }
  const position = Math.min(...sources.map((n) => f.position.get(n) ?? 0));
  const first = sources[0]!;
  return { kind: 'mlp', via, roles, position, stream: streamOf(f, first.input[f.projections.get(first)!.dataInput]!), gated };
}

/** Whether some path from a projection's output through `within` nodes passes an activation before the others join. */
function pathHasActivation(f: GraphFacts, source: NodeProto, within: ReadonlySet<NodeProto>): boolean {
  // Nodes reachable from `source` inside the MLP, stopping at nodes with another live input
  // that does not come from `source` (the gating product).
  const mine = new Set<string>(source.output.filter(Boolean));
  const order = [...within].sort((a, b) => (f.position.get(a) ?? 0) - (f.position.get(b) ?? 0));
  let act = false;
  for (const n of order) {
    const live = f.liveDataInputs(n);
    if (live.length === 0 || !live.every((x) => mine.has(x))) continue;
    for (const o of n.output) if (o) mine.add(o);
    if (ACTIVATIONS.has(n.opType)) act = true;
  }
  return act;
}

// ---- embeddings --------------------------------------------------------------------------

/** Token + position embedding lookups summed (Add of two Gathers from 2-D tables), or EmbedLayerNormalization with position embeddings. */
function hasLearnedPositions(f: GraphFacts): boolean {
  const lookup = (v: string | undefined) => {
    const p = v ? f.producer(v) : undefined;
    return !!p && p.opType === 'Gather' && !!p.input[0] && f.isConst(p.input[0]);
  };
  return f.order.some(
    (n) =>
      (n.opType === 'Add' && lookup(n.input[0]) && lookup(n.input[1])) || (n.opType === 'EmbedLayerNormalization' && n.domain === 'com.microsoft' && !!n.input[3]),
  );
}

// ---- layers ------------------------------------------------------------------------------

/** Groups blocks (in topological order) into layers. */
function assignLayers(blocks: Block[]): Block[][] {
  const layers: Block[][] = [];
  for (const b of [...blocks].sort((x, y) => x.position - y.position)) {
    const cur = layers.at(-1);
    const has = (k: BlockKind) => !!cur?.some((x) => x.kind === k);
    let fresh: boolean;
    if (b.kind === 'attention') {
      // Parallel attention/MLP (GPT-J style) read the same stream; the MLP may come first.
      const parallel = !!cur && has('mlp') && !has('attention') && cur.every((x) => x.stream === b.stream);
      fresh = !cur || ((has('attention') || has('mlp')) && !parallel);
    } else if (b.kind === 'cross_attention') fresh = !cur || has('mlp') || has('cross_attention');
    else fresh = !cur || has('mlp');
    if (fresh) layers.push([b]);
    else cur!.push(b);
  }
  return layers;
}

/**
 * Recognises attention blocks and MLPs and orders them into layers.
 *
 * @param f - facts of the main graph (its projections are the candidates for roles)
 */
export function analyseStructure(f: GraphFacts): Structure {
  const blocks: Block[] = [];
  const taken = new Set<NodeProto>();
  const add = (b: Block | undefined) => {
    if (!b) return;
    // A projection belongs to one block: the first that claims it.
    for (const n of [...b.roles.keys()]) if (taken.has(n)) b.roles.delete(n);
    if (b.roles.size === 0) return;
    for (const n of b.roles.keys()) taken.add(n);
    blocks.push(b);
  };
  for (const n of f.order) {
    if (n.opType === 'Softmax' && isDefault(n)) add(unfusedAttention(f, n));
    else if (FUSED_ATTENTION.has(key(n))) add(fusedAttention(f, n));
  }
  for (const n of f.order) {
    if (!f.projections.has(n) || taken.has(n)) continue;
    add(mlpBlock(f, n, taken));
  }
  const layers = assignLayers(blocks);
  const decoder = layers.some((l) => l.some((b) => b.kind === 'cross_attention'));
  const counters = { encoder: 0, decoder: 0 };
  const roles = new Map<NodeProto, StructuralRole>();
  const products = new Map<NodeProto, string>(blocks.flatMap((b) => [...(b.products ?? [])]));
  layers.forEach((layer, li) => {
    const stack = decoder ? (layer.some((b) => b.kind === 'cross_attention') ? 'decoder' : 'encoder') : undefined;
    const index = stack ? counters[stack]++ : li;
    for (const b of layer) for (const [n, r] of b.roles) roles.set(n, { layer: li, ...(stack ? { stack } : {}), index, block: b.kind, role: r.role, via: b.via, pattern: r.pattern });
  });
  const self = blocks.filter((b) => b.kind === 'attention');
  const mlps = blocks.filter((b) => b.kind === 'mlp');
  return {
    roles,
    products,
    summary: {
      layers: layers.length,
      attention: self.length,
      crossAttention: blocks.filter((b) => b.kind === 'cross_attention').length,
      mlp: mlps.length,
      packedQkv: self.filter((b) => b.packed).length,
      separateQkv: self.filter((b) => b.separate).length,
      fusedOps: [...new Set(blocks.map((b) => b.fused).filter((x): x is string => !!x))],
      postNorm: self.filter((b) => b.postNorm === true).length,
      preNorm: self.filter((b) => b.postNorm === false).length,
      gatedMlp: mlps.filter((b) => b.gated).length,
      plainMlp: mlps.filter((b) => !b.gated).length,
      rotary: blocks.some((b) => b.rotary),
      learnedPositions: hasLearnedPositions(f),
      unscaled: blocks.filter((b) => b.kind !== 'mlp' && !b.scaled).length,
    },
  };
}
