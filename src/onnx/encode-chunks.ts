/**
 * Encoding a large model without copying its tensor bytes. protobuf's writer copies every
 * `raw_data` into its buffers and again at each nesting level (tensor → graph → model), which
 * for a bert-base export costs seconds. Here the model is encoded with the main graph's large
 * `raw_data` fields emptied, then those three message levels are re-emitted with corrected
 * length prefixes and the original byte arrays spliced in as separate chunks. The chunks,
 * concatenated, are byte for byte what `toBinary` gives.
 *
 * Deferred tensors of the main graph (bytes computed on demand, or a range of the file a model
 * was lazily loaded from; see tensor.ts) are spliced as `DeferredPart`s: their length is known
 * without producing them, and the writer (`saveModel`, `encodeModel`) fetches their bytes only
 * when it gets to them.
 */
import { toBinary, ModelProtoSchema, type ModelProto, type TensorProto } from './proto.ts';
import { deferredLength, isDeferred, isExternal } from './tensor.ts';

/** Tensors at least this large are spliced rather than copied. */
const SPLICE_THRESHOLD = 64 * 1024;

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;

/** A protobuf base-128 varint. */
export function encodeVarint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

interface Field {
  field: number;
  wireType: number;
  /** Whole field: tag .. end. */
  start: number;
  end: number;
  /** Payload of a length-delimited field. */
  payloadStart: number;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return [result, pos];
    mul *= 0x80;
  }
}

/** The top-level fields of an encoded message in `buf[start, end)`. */
function fields(buf: Uint8Array, start: number, end: number): Field[] {
  const out: Field[] = [];
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const wireType = tag & 7;
    const field = Math.floor(tag / 8);
    let payloadStart = pos;
    switch (wireType) {
      case 0:
        pos = readVarint(buf, pos)[1];
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const [len, p2] = readVarint(buf, pos);
        payloadStart = p2;
        pos = p2 + len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unexpected wire type ${wireType} while re-encoding a model`);
    }
    out.push({ field, wireType, start: fieldStart, end: pos, payloadStart });
  }
  return out;
}

/** A length-delimited field's tag bytes (everything before its length varint). */
function tagBytes(buf: Uint8Array, f: Field): Uint8Array {
  return buf.subarray(f.start, f.start + encodeVarint(f.field * 8 + f.wireType).length);
}

/** A deferred tensor's bytes in an encoding: `length` bytes, fetched by the writer. */
export interface DeferredPart {
  tensor: TensorProto;
  length: number;
}

export type ModelPart = Uint8Array | DeferredPart;

type Chunks = ModelPart[];
const partSize = (p: ModelPart) => (p instanceof Uint8Array ? p.byteLength : p.length);
const size = (chunks: Chunks) => chunks.reduce((s, c) => s + partSize(c), 0);

/**
 * Encodes a model as a list of chunks whose concatenation equals `toBinary(ModelProto)`;
 * large initializer bytes of the main graph are referenced, not copied. The model must have no
 * deferred tensors (see `encodeModelParts`).
 */
export function encodeModelChunks(proto: ModelProto): Uint8Array[] {
  const parts = encodeModelParts(proto);
  if (parts.some((p) => !(p instanceof Uint8Array))) throw new Error('encodeModelChunks: the model has deferred tensors; use encodeModelParts');
  return parts as Uint8Array[];
}

/**
 * Encodes a model as parts whose concatenation, with each `DeferredPart` replaced by its
 * tensor's bytes, equals `toBinary(ModelProto)` of the model with those bytes as raw_data.
 * Main-graph initializers that are deferred (and not external references) become `DeferredPart`s;
 * deferred tensors elsewhere (nested subgraphs) must be materialised by the caller first.
 */
export function encodeModelParts(proto: ModelProto): ModelPart[] {
  const graph = proto.graph;
  const big = new Map<number, ModelPart>();
  if (graph) {
    graph.initializer.forEach((t: TensorProto, i) => {
      if (isDeferred(t) && !isExternal(t)) big.set(i, { tensor: t, length: deferredLength(t)! });
      else if (t.rawData.byteLength >= SPLICE_THRESHOLD) big.set(i, t.rawData);
    });
  }
  if (!graph || big.size === 0) return [toBinary(ModelProtoSchema, proto)];
  const empty = new Uint8Array(0);
  // Each spliced tensor is encoded with an empty (present) raw_data, then restored exactly,
  // including whether raw_data was an own (set) field.
  const saved = new Map<number, { own: boolean; bytes: Uint8Array }>();
  for (const i of big.keys()) {
    const t = graph.initializer[i]!;
    saved.set(i, { own: Object.hasOwn(t, 'rawData'), bytes: t.rawData });
    t.rawData = empty;
  }
  let small: Uint8Array;
  try {
    small = toBinary(ModelProtoSchema, proto);
  } finally {
    for (const [i, { own, bytes }] of saved) {
      const t = graph.initializer[i]!;
      if (own) t.rawData = bytes as Uint8Array<ArrayBuffer>;
      else Reflect.deleteProperty(t, 'rawData');
    }
  }

  const out: Chunks = [];
  for (const mf of fields(small, 0, small.length)) {
    if (mf.field !== MODEL_GRAPH || mf.wireType !== 2) {
      out.push(small.subarray(mf.start, mf.end));
      continue;
    }
    const graphChunks: Chunks = [];
    let initIndex = 0;
    for (const gf of fields(small, mf.payloadStart, mf.end)) {
      if (gf.field !== GRAPH_INITIALIZER || gf.wireType !== 2) {
        graphChunks.push(small.subarray(gf.start, gf.end));
        continue;
      }
      const part = big.get(initIndex++);
      if (!part) {
        graphChunks.push(small.subarray(gf.start, gf.end));
        continue;
      }
      const tensorChunks: Chunks = [];
      let spliced = false;
      for (const tf of fields(small, gf.payloadStart, gf.end)) {
        if (!spliced && tf.field === TENSOR_RAW_DATA && tf.wireType === 2 && tf.end === tf.payloadStart) {
          const length = partSize(part);
          if (length > 0) tensorChunks.push(tagBytes(small, tf), encodeVarint(length), part);
          else tensorChunks.push(small.subarray(tf.start, tf.end));
          spliced = true;
        } else tensorChunks.push(small.subarray(tf.start, tf.end));
      }
      if (!spliced) throw new Error(`encodeModelParts: tensor #${initIndex - 1} has no empty raw_data field to splice into`);
      graphChunks.push(tagBytes(small, gf), encodeVarint(size(tensorChunks)), ...tensorChunks);
    }
    out.push(tagBytes(small, mf), encodeVarint(size(graphChunks)), ...graphChunks);
  }
  return out;
}
