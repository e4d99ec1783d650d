/**
 * What a model needs fed besides the data, and how to fill it: the one place that knows the
 * extra inputs of decoders and the conventions Hugging Face uses for inputs the data may leave
 * out. Collation (example-set.ts) asks it for every input a batch lacks, for training, eval,
 * `grad` and the batches shapes are probed with.
 *
 * Each graph input gets a **role**, found from the graph first (which op reads it, at which
 * input) and from its name, type and shape second (the names optimum, ONNX Runtime's transformer
 * optimizer, the genai model builder, keras2onnx and torch.onnx give):
 *
 * | role                    | found by                                                          | filled with (when the data lacks it)            |
 * |-------------------------|-------------------------------------------------------------------|-------------------------------------------------|
 * | `input_ids`             | EmbedLayerNormalization input 0; name; the one unnamed int input that indexes an embedding table | — (the data must carry it) |
 * | `attention_mask`        | Attention mask_index / key_padding_mask [B, L]; EmbedLayerNorm 7; name (`attention_mask`, `input_mask`, …) | 1 on real tokens, 0 on padding |
 * | `token_type_ids`        | EmbedLayerNormalization input 1; name (`token_type_ids`, `segment_ids`, …) | 0                                    |
 * | `position_ids`          | GroupQueryAttention / EmbedLayerNormalization position_ids; name  | cumsum(mask) − 1, masked positions 1 (HF)       |
 * | `cache_position`        | name                                                              | 0 … T−1                                         |
 * | `past`                  | past inputs of Attention / MultiHeadAttention / GroupQueryAttention / ONNX Attention; name (`past_key_values.N.key`, `past_N`, …) | zeros with past length 0 |
 * | `past_length`           | Attention / MultiHeadAttention past_sequence_length               | 0                                               |
 * | `static_cache`          | TensorScatter past_cache                                          | zeros of the cache's size                       |
 * | `cache_write_index`     | TensorScatter write_indices                                       | 0 (every row writes at position 0)              |
 * | `kv_valid_length`       | nonpad_kv_seqlen of a non-causal ONNX Attention; 1-D mask_index / key_padding_mask | each row's length               |
 * | `written_length`        | nonpad_kv_seqlen of a causal ONNX Attention (a static cache)      | T, the tokens written (see below)               |
 * | `seqlens_k`             | GroupQueryAttention seqlens_k                                     | each row's length − 1                           |
 * | `total_sequence_length` | GroupQueryAttention total_sequence_length                         | T                                               |
 * | `use_cache_branch`      | If condition; name                                                | false                                           |
 * | `data`                  | anything else (pixel values, hidden states, cross-attention caches) | — (the data must carry it)                    |
 *
 * A training step starts without a cache: with past length 0 the attention mask covers the T
 * tokens of the batch, and a static cache gets the batch written at position 0. A causal ONNX
 * Attention aligns its causal mask to the end of the valid keys (query i sees keys up to
 * i + nonpad_kv_seqlen − S, as ONNX Runtime computes it), so its valid length is every row's T
 * tokens written: a real token never sees the padding after it, and padded positions carry no
 * loss. Cross-attention caches (encoder keys and values) hold real values and are never filled.
 *
 * The same graph walk finds the bounds data is checked against before training (`modelBounds`):
 * the vocabulary (rows of the table `input_ids` is gathered from), the positions (rows of the
 * position table, a static sequence dim, or a static cache's length) and the token types.
 */
import { DataType as DT, isFloatType } from '../onnx/dtype.ts';
import { attrInt, subgraphsOf } from '../onnx/attributes.ts';
import { valueInfoType } from '../onnx/graph.ts';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto.ts';
import { tensorDims, tensorToInts } from '../onnx/tensor.ts';

export type InputRole =
  | 'input_ids'
  | 'attention_mask'
  | 'token_type_ids'
  | 'position_ids'
  | 'cache_position'
  | 'past'
  | 'past_length'
  | 'static_cache'
  | 'cache_write_index'
  | 'kv_valid_length'
  | 'written_length'
  | 'seqlens_k'
  | 'total_sequence_length'
  | 'use_cache_branch'
  | 'data';

/** What the model wants for one graph input. */
export interface InputSpec {
  name: string;
  /** ONNX element type. */
  elemType: number;
  /** Declared dims, when known: a number, a symbolic name, or null. */
  dims?: ReadonlyArray<number | string | null>;
  /** What the input is (default: from its name, type and shape). */
  role?: InputRole;
  /** Caches: the axis of the sequence (past length) and of the batch. */
  seqAxis?: number;
  batchAxis?: number;
}

/** The shape of a batch the extra inputs are filled for. */
export interface BatchShape {
  /** Examples in the batch. */
  B: number;
  /** Padded sequence length. */
  T: number;
  /** Real tokens per row (right padding: tokens 0 … lengths[b]−1 are real). */
  lengths: readonly number[];
}

/** Values for one input: `values` row-major, or zeros when absent. */
export interface Fill {
  dims: number[];
  values?: number[];
}

// ---- roles from names, types and shapes ---------------------------------------------------------

const INT_TYPES = new Set<number>([DT.INT64, DT.INT32, DT.INT16, DT.INT8, DT.UINT8, DT.UINT16, DT.UINT32, DT.UINT64]);
const isIntLike = (dt: number) => INT_TYPES.has(dt) || dt === DT.BOOL;

/** Caches holding the encoder's keys and values (cross attention): real data, never filled. */
const CROSS_CACHE = /encoder|cross/i;
const PAST_NAME = /past|layer_past|(^|[._])cache([._]|$)|key_cache|value_cache/i;

/** The role an input's name, type and shape suggest (no graph needed: old manifests, bare specs). */
export function roleFromName(spec: Pick<InputSpec, 'name' | 'elemType' | 'dims'>): InputRole {
  const n = spec.name;
  const rank = spec.dims?.length;
  if (isIntLike(spec.elemType)) {
    if (/^(decoder_)?input_ids$|^ids$/i.test(n)) return 'input_ids';
    if (/token_type|segment_ids|input_type_ids/i.test(n)) return 'token_type_ids';
    if (/position_ids/i.test(n)) return 'position_ids';
    if (/^cache_position$/i.test(n)) return 'cache_position';
    if (/use_cache_branch/i.test(n)) return 'use_cache_branch';
    if (/write_ind/i.test(n)) return 'cache_write_index';
    if (/nonpad_kv_seqlen/i.test(n)) return 'kv_valid_length';
    if (/seqlens_k/i.test(n)) return 'seqlens_k';
    if (/total_seq(uence)?_len(gth)?$/i.test(n) && (rank === undefined || rank <= 1)) return 'total_sequence_length';
    if (/past_seq(uence)?_len(gth)?$/i.test(n) && (rank === undefined || rank <= 1)) return 'past_length';
    if (/(^|_)mask$|attention_mask|input_mask/i.test(n)) return 'attention_mask';
  }
  if (isFloatType(spec.elemType) && PAST_NAME.test(n) && !CROSS_CACHE.test(n) && (rank === undefined || rank >= 3)) return 'past';
  return 'data';
}

// ---- roles from the graph -------------------------------------------------------------------------

/** Ops whose output holds values of their first input (reshaped, re-typed or a part of them). */
const TRANSPARENT = new Set(['Identity', 'Cast', 'CastLike', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Expand', 'Slice']);

interface GraphIndex {
  /** Every node, those of subgraphs included. */
  nodes: NodeProto[];
  uses: Map<string, Array<{ node: NodeProto; index: number }>>;
  producer: Map<string, NodeProto>;
  init: Map<string, TensorProto>;
}

function indexGraph(graph: GraphProto): GraphIndex {
  const nodes: NodeProto[] = [];
  const init = new Map<string, TensorProto>();
  const visit = (g: GraphProto) => {
    for (const t of g.initializer) init.set(t.name, t);
    for (const n of g.node) {
      nodes.push(n);
      for (const sub of subgraphsOf(n)) visit(sub);
    }
  };
  visit(graph);
  const uses = new Map<string, Array<{ node: NodeProto; index: number }>>();
  const producer = new Map<string, NodeProto>();
  for (const node of nodes) {
    node.input.forEach((name, index) => {
      if (!name) return;
      let list = uses.get(name);
      if (!list) uses.set(name, (list = []));
      list.push({ node, index });
    });
    for (const o of node.output) if (o) producer.set(o, node);
  }
  return { nodes, uses, producer, init };
}

/** Where a value's contents are read: its uses, looking through transparent ops. */
function readers(ix: GraphIndex, name: string): Array<{ node: NodeProto; index: number }> {
  const out: Array<{ node: NodeProto; index: number }> = [];
  const seen = new Set<string>();
  const stack = [name];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const u of ix.uses.get(v) ?? []) {
      if (TRANSPARENT.has(u.node.opType) && u.index === 0 && u.node.output[0]) stack.push(u.node.output[0]);
      else out.push(u);
    }
  }
  return out;
}

const MS = 'com.microsoft';
const isOnnx = (n: NodeProto) => !n.domain || n.domain === 'ai.onnx';
const rankOf = (spec: InputSpec) => spec.dims?.length;

/** The role of one input from the op that reads it, with the cache axes the op's layout implies. */
function structuralRole(use: { node: NodeProto; index: number }, spec: InputSpec): Pick<InputSpec, 'role' | 'seqAxis' | 'batchAxis'> | undefined {
  const { node: n, index: i } = use;
  const rank = rankOf(spec);
  const mask = (): Pick<InputSpec, 'role'> | undefined => (rank === 1 ? { role: 'kv_valid_length' } : rank === 2 ? { role: 'attention_mask' } : undefined);
  if (isOnnx(n)) {
    if (n.opType === 'TensorScatter') {
      if (i === 0) {
        const r = rank ?? 4;
        const axis = attrInt(n, 'axis', -2);
        return { role: 'static_cache', seqAxis: axis < 0 ? axis + r : axis, batchAxis: 0 };
      }
      if (i === 2) return { role: 'cache_write_index' };
    }
    if (n.opType === 'Attention') {
      if (i === 4 || i === 5) return { role: 'past', seqAxis: 2, batchAxis: 0 };
      // A causal Attention aligns its mask to the end of the valid keys (query i sees keys up to
      // i + nonpad_kv_seqlen − S), so with the batch written at 0 every row's valid length is T.
      if (i === 6) return { role: attrInt(n, 'is_causal', 0) ? 'written_length' : 'kv_valid_length' };
    }
    if (n.opType === 'If' && i === 0 && spec.elemType === DT.BOOL) return { role: 'use_cache_branch' };
    return undefined;
  }
  if (n.domain !== MS) return undefined;
  switch (n.opType) {
    case 'Attention':
      if (i === 3) return mask();
      if (i === 4) return { role: 'past', seqAxis: 3, batchAxis: 1 };
      if (i === 6) return { role: 'past_length' };
      return undefined;
    case 'MultiHeadAttention':
    case 'DecoderMaskedMultiHeadAttention':
      if (i === 4) return mask();
      if (i === 6 || i === 7) return CROSS_CACHE.test(spec.name) ? undefined : { role: 'past', seqAxis: 2, batchAxis: 0 };
      if (i === 8) return { role: 'past_length' };
      return undefined;
    case 'GroupQueryAttention':
      if (i === 3 || i === 4) return { role: 'past', seqAxis: 2, batchAxis: 0 };
      if (i === 5) return { role: 'seqlens_k' };
      if (i === 6) return { role: 'total_sequence_length' };
      if (i === 9) return { role: 'position_ids' };
      return undefined;
    case 'EmbedLayerNormalization':
      return ({ 0: { role: 'input_ids' }, 1: { role: 'token_type_ids' }, 7: { role: 'attention_mask' }, 8: { role: 'position_ids' } } as Record<number, Pick<InputSpec, 'role'>>)[i];
    default:
      return undefined;
  }
}

/** The batch symbol of a graph: the first dim of its token (or first) input. */
function batchSymbol(specs: readonly InputSpec[]): string | undefined {
  const first = specs.find((s) => roleFromName(s) === 'input_ids') ?? specs[0];
  const d = first?.dims?.[0];
  return typeof d === 'string' && d ? d : undefined;
}

/**
 * The batch and sequence axes of a cache whose op did not say: the dim named like the batch is
 * the batch axis, the one other symbolic dim the past length; without names, the layouts
 * exporters use ([2, B, H, P, D] and [B, H, P, D]).
 */
function cacheAxes(spec: InputSpec, batchSym: string | undefined): { seqAxis?: number; batchAxis?: number } {
  const dims = spec.dims ?? [];
  const isBatch = (d: number | string | null) => typeof d === 'string' && d !== '' && (d === batchSym || /batch/i.test(d));
  const batchAxis = dims.findIndex(isBatch);
  const symbolic = dims.map((d, a) => (typeof d === 'string' && d !== '' && a !== batchAxis ? a : -1)).filter((a) => a >= 0);
  if (batchAxis >= 0 && symbolic.length === 1) return { batchAxis, seqAxis: symbolic[0]! };
  if (dims.length === 5) return { batchAxis: 1, seqAxis: 3 };
  if (dims.length === 4) return { batchAxis: 0, seqAxis: 2 };
  return {};
}

/**
 * The data inputs of a graph (every input that is not an initializer, minus `exclude`) with their
 * roles, found from the ops that read them, then from names, types and shapes.
 */
export function describeInputs(graph: GraphProto, exclude?: ReadonlySet<string>): InputSpec[] {
  const inits = new Set(graph.initializer.map((t) => t.name));
  const base: InputSpec[] = graph.input
    .filter((v) => !inits.has(v.name) && !exclude?.has(v.name))
    .map((v) => {
      const t = valueInfoType(v);
      return { name: v.name, elemType: t?.elemType ?? 0, ...(t?.dims ? { dims: t.dims } : {}) };
    });
  const ix = indexGraph(graph);
  const batchSym = batchSymbol(base);
  // An int input named like nothing known that indexes an embedding table is the token input,
  // when it is the only one (keras2onnx's `input_1`, a torch.onnx export's own names).
  const unnamedTokens = base.filter((s) => isIntLike(s.elemType) && roleFromName(s) === 'data' && tableRows(ix, s.name).length > 0);
  const hasTokens = base.some((s) => roleFromName(s) === 'input_ids');
  return base.map((spec) => {
    let found: Pick<InputSpec, 'role' | 'seqAxis' | 'batchAxis'> | undefined;
    for (const use of readers(ix, spec.name)) {
      found = structuralRole(use, spec);
      if (found) break;
    }
    if (!found && !hasTokens && unnamedTokens.length === 1 && unnamedTokens[0] === spec) found = { role: 'input_ids' };
    const role = found?.role ?? roleFromName(spec);
    const out: InputSpec = { ...spec, role };
    if (role === 'past' || role === 'static_cache') {
      const axes = found?.seqAxis !== undefined ? found : cacheAxes(spec, batchSym);
      if (axes.seqAxis !== undefined) out.seqAxis = axes.seqAxis;
      if (axes.batchAxis !== undefined) out.batchAxis = axes.batchAxis;
    }
    return out;
  });
}

/** An input spec with its role filled in from its name when it carries none. */
export function withRole(spec: InputSpec, all: readonly InputSpec[] = [spec]): InputSpec {
  if (spec.role) return spec;
  const role = roleFromName(spec);
  if (role !== 'past') return { ...spec, role };
  return { ...spec, role, ...cacheAxes(spec, batchSymbol(all)) };
}

// ---- filling --------------------------------------------------------------------------------------

/** The roles collation fills itself when the data lacks them. */
const FILLED = new Set<InputRole>(['attention_mask', 'token_type_ids', 'position_ids', 'cache_position', 'past', 'past_length', 'static_cache', 'cache_write_index', 'kv_valid_length', 'written_length', 'seqlens_k', 'total_sequence_length', 'use_cache_branch']);

/** Whether collation can fill this input when the data does not carry it. */
export function canFill(spec: InputSpec): boolean {
  const role = withRole(spec).role!;
  if (!FILLED.has(role)) return false;
  if (role === 'past') return cacheDims(withRole(spec), { B: 1, T: 1, lengths: [1] }) !== undefined;
  return true;
}

/** The attention mask of right-padded rows: 1 on each row's real tokens. */
export function maskOf(shape: BatchShape): number[] {
  const out = new Array<number>(shape.B * shape.T).fill(0);
  shape.lengths.forEach((n, b) => out.fill(1, b * shape.T, b * shape.T + Math.min(n, shape.T)));
  return out;
}

/** Hugging Face's position ids from a mask: cumsum(mask) − 1, and 1 where the mask is 0. */
export function positionIdsFromMask(mask: ArrayLike<number>, B: number, T: number): number[] {
  const out = new Array<number>(B * T);
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let t = 0; t < T; t++) {
      const m = Number(mask[b * T + t]);
      sum += m;
      out[b * T + t] = m === 0 ? 1 : sum - 1;
    }
  }
  return out;
}

/** `[1]` or `[]` as the graph declares a one-value input. */
const scalarDims = (spec: InputSpec): number[] => (spec.dims && spec.dims.length === 0 ? [] : [1]);
/** `[B]` (or `[B, 1]`) as the graph declares a per-row input. */
const rowDims = (spec: InputSpec, B: number): number[] => (spec.dims && spec.dims.length === 2 && spec.dims[1] === 1 ? [B, 1] : [B]);

/** Dims of an empty past (length 0) or a static cache for this batch; undefined when a dim cannot be told. */
function cacheDims(spec: InputSpec, shape: BatchShape): number[] | undefined {
  const dims = spec.dims;
  if (!dims || spec.seqAxis === undefined) return undefined;
  const out: number[] = [];
  for (let a = 0; a < dims.length; a++) {
    const d = dims[a];
    if (a === spec.batchAxis) out.push(shape.B);
    else if (a === spec.seqAxis) {
      if (spec.role === 'static_cache') out.push(typeof d === 'number' && d > 0 ? d : shape.T);
      else if (typeof d === 'number' && d > 0) return undefined; // a fixed past length: real values only
      else out.push(0);
    } else if (typeof d === 'number' && d >= 0) out.push(d);
    else return undefined;
  }
  return out;
}

/**
 * Values for an input the data does not carry, from the batch's shape and `mask` (the batch's
 * attention mask, [B, T], when the data gave one). `undefined` when the role has no default.
 */
export function fillInput(spec: InputSpec, shape: BatchShape, mask?: ArrayLike<number>): Fill | undefined {
  const s = withRole(spec);
  const { B, T } = shape;
  const realMask = () => (mask ? Array.from(mask, Number) : maskOf(shape));
  const lengths = () => (mask ? Array.from({ length: B }, (_, b) => rowSum(mask, b, T)) : [...shape.lengths]);
  switch (s.role) {
    case 'attention_mask':
      return { dims: [B, T], values: realMask() };
    case 'token_type_ids':
      return { dims: [B, T] };
    case 'position_ids':
      return { dims: [B, T], values: positionIdsFromMask(realMask(), B, T) };
    case 'cache_position':
      return { dims: [T], values: Array.from({ length: T }, (_, t) => t) };
    case 'past':
    case 'static_cache': {
      const dims = cacheDims(s, shape);
      return dims ? { dims } : undefined;
    }
    case 'past_length':
      return { dims: scalarDims(s), values: [0] };
    case 'use_cache_branch':
      return { dims: scalarDims(s), values: [0] };
    case 'cache_write_index':
      return { dims: rowDims(s, B) };
    case 'kv_valid_length':
      return { dims: rowDims(s, B), values: lengths() };
    case 'written_length':
      return { dims: rowDims(s, B), values: new Array<number>(B).fill(T) };
    case 'seqlens_k':
      return { dims: rowDims(s, B), values: lengths().map((n) => n - 1) };
    case 'total_sequence_length':
      return { dims: scalarDims(s), values: [T] };
    default:
      return undefined;
  }
}

function rowSum(mask: ArrayLike<number>, b: number, T: number): number {
  let n = 0;
  for (let t = 0; t < T; t++) n += Number(mask[b * T + t]);
  return n;
}

/** Whether a graph output is a cache the model hands back (`present…`), never a prediction. */
export function isCacheOutput(name: string): boolean {
  return /^present|[._/]present[._]|^past_key_values|^(key|value)_cache/i.test(name);
}

/** The static sequence length of a model's token input, if it declares one. */
export function staticSequenceLength(inputs: readonly InputSpec[]): number | undefined {
  const ids = inputs.map((i) => withRole(i, inputs)).find((i) => i.role === 'input_ids');
  const d = ids?.dims?.[1];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

// ---- bounds ---------------------------------------------------------------------------------------

/** What data is checked against: undefined where the model does not tell. */
export interface ModelBounds {
  /** Token ids must be < vocab. */
  vocab?: number;
  /** Sequences must be at most this long. */
  positions?: number;
  /** Token type ids must be < tokenTypes. */
  tokenTypes?: number;
  /** Class labels must be < classes (the head's last dim). */
  classes?: number;
}

/** A constant's tensor: an initializer, a Constant node's value, through Identity. */
function constantOf(ix: GraphIndex, name: string): TensorProto | undefined {
  for (let guard = 0; guard < 8; guard++) {
    const t = ix.init.get(name);
    if (t) return t;
    const p = ix.producer.get(name);
    if (!p) return undefined;
    if (p.opType === 'Constant') return p.attribute.find((a) => a.name === 'value')?.t;
    if (p.opType !== 'Identity' && p.opType !== 'Cast') return undefined;
    name = p.input[0]!;
  }
  return undefined;
}

/** Rows of the embedding tables a value indexes (Gather indices into a constant 2-D table). */
function tableRows(ix: GraphIndex, name: string): number[] {
  const rows: number[] = [];
  for (const u of readers(ix, name)) {
    if (u.node.opType === 'Gather' && u.index === 1 && attrInt(u.node, 'axis', 0) === 0) {
      const table = constantOf(ix, u.node.input[0]!);
      if (table && table.dims.length === 2) rows.push(Number(table.dims[0]));
    }
  }
  return rows;
}

/** Rows of a com.microsoft EmbedLayerNormalization table reading `name` at `input`. */
function embedLayerNormRows(ix: GraphIndex, name: string, input: number, table: number): number[] {
  return readers(ix, name)
    .filter((u) => u.node.domain === MS && u.node.opType === 'EmbedLayerNormalization' && u.index === input)
    .map((u) => constantOf(ix, u.node.input[table] ?? ''))
    .filter((t): t is TensorProto => !!t && t.dims.length === 2)
    .map((t) => Number(t.dims[0]));
}

/** Values computed from the values of graph inputs (Shape and Size read only shapes). */
function valueTainted(ix: GraphIndex, graph: GraphProto): Set<string> {
  const inits = new Set(graph.initializer.map((t) => t.name));
  const tainted = new Set(graph.input.filter((v) => !inits.has(v.name)).map((v) => v.name));
  const SHAPE_ONLY = new Set(['Shape', 'Size', 'ConstantOfShape', 'EyeLike']);
  for (const n of ix.nodes) {
    if (SHAPE_ONLY.has(n.opType)) continue;
    if (n.input.some((i) => tainted.has(i))) for (const o of n.output) tainted.add(o);
  }
  return tainted;
}

/** Whether a constant int tensor holds 0, 1, …, n−1 (a position buffer). */
function isArange(t: TensorProto): boolean {
  const n = tensorDims(t).reduce((a, b) => a * b, 1);
  if (n < 2 || n > 1 << 20 || (t.dataType !== DT.INT64 && t.dataType !== DT.INT32)) return false;
  const v = tensorToInts(t, '');
  return v.every((x, i) => x === i);
}

/**
 * Position tables found without a `position_ids` input: Gathers whose indices come from a Range
 * or a Slice of a 0…n−1 buffer, not from input values (BERT's sliced `position_ids` buffer,
 * GPT-2's Range); their rows, and the buffers' lengths.
 */
function computedPositionBounds(ix: GraphIndex, graph: GraphProto): number[] {
  const tainted = valueTainted(ix, graph);
  const out: number[] = [];
  for (const n of ix.nodes) {
    let source: string | undefined;
    if (n.opType === 'Range' && !tainted.has(n.output[0]!)) source = n.output[0];
    if (n.opType === 'Slice' && !tainted.has(n.output[0]!)) {
      const buffer = constantOf(ix, n.input[0]!);
      if (buffer && isArange(buffer)) {
        source = n.output[0];
        out.push(tensorDims(buffer).at(-1)!);
      }
    }
    if (!source) continue;
    const rows = tableRows(ix, source);
    // A Range feeding no table (a causal mask, a loop counter) bounds nothing.
    out.push(...rows);
  }
  return out;
}

const minOf = (xs: readonly number[]): number | undefined => (xs.length ? Math.min(...xs) : undefined);

/**
 * The bounds data is checked against, found in the graph: vocabulary and token types from the
 * tables their ids index, positions from the position table (indexed by `position_ids` or by
 * positions the graph computes) and a static sequence dim. Classes come from the head (the
 * caller knows its shape).
 */
export function modelBounds(graph: GraphProto, inputs: readonly InputSpec[]): ModelBounds {
  const ix = indexGraph(graph);
  const byRole = (role: InputRole) => inputs.map((i) => withRole(i, inputs)).filter((i) => i.role === role).map((i) => i.name);
  const ids = byRole('input_ids');
  const vocab = minOf(ids.flatMap((n) => [...tableRows(ix, n), ...embedLayerNormRows(ix, n, 0, 2)]));
  const tokenTypes = minOf(byRole('token_type_ids').flatMap((n) => [...tableRows(ix, n), ...embedLayerNormRows(ix, n, 1, 4)]));
  const positionIds = byRole('position_ids');
  const positionRows = positionIds.length
    ? positionIds.flatMap((n) => [...tableRows(ix, n), ...embedLayerNormRows(ix, n, 8, 3)])
    : [...computedPositionBounds(ix, graph), ...ids.flatMap((n) => embedLayerNormRows(ix, n, 0, 3))];
  const staticLen = staticSequenceLength(inputs);
  // A static cache holds at most its length: the batch is written into it at position 0.
  const cacheLengths = inputs
    .map((i) => withRole(i, inputs))
    .filter((i) => i.role === 'static_cache' && i.seqAxis !== undefined)
    .map((i) => i.dims?.[i.seqAxis!])
    .filter((d): d is number => typeof d === 'number' && d > 0);
  const positions = minOf([...positionRows, ...(staticLen ? [staticLen] : []), ...cacheLengths]);
  return {
    ...(vocab !== undefined ? { vocab } : {}),
    ...(positions !== undefined ? { positions } : {}),
    ...(tokenTypes !== undefined ? { tokenTypes } : {}),
  };
}
