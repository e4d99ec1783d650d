/**
 * Encoding a large model without copying its tensor bytes. protobuf's writer copies every
 * `raw_data` into its buffers and again at each nesting level (tensor → graph → model), which
 * for a bert-base export costs seconds. Here the model is encoded with the main graph's large
 * `raw_data` fields emptied, then those three message levels are re-emitted with corrected
 * length prefixes and the original byte arrays spliced in as separate chunks. The chunks,
 * concatenated, are byte for byte what `toBinary` gives.
 */
import { toBinary, ModelProtoSchema, type ModelProto, type TensorProto } from './proto.ts';

/** Tensors at least this large are spliced rather than copied. */
const SPLICE_THRESHOLD = 64 * 1024;

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;

function varint(n: number): Uint8Array {
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
  return buf.subarray(f.start, f.start + varint(f.field * 8 + f.wireType).length);
}

type Chunks = Uint8Array[];
const size = (chunks: Chunks) => chunks.reduce((s, c) => s + c.byteLength, 0);

/**
 * Encodes a model as a list of chunks whose concatenation equals `toBinary(ModelProto)`;
 * large initializer bytes of the main graph are referenced, not copied.
 */
export function encodeModelChunks(proto: ModelProto): Uint8Array[] {
  const graph = proto.graph;
  const big = new Map<number, Uint8Array>();
  if (graph) {
    graph.initializer.forEach((t: TensorProto, i) => {
      if (t.rawData.byteLength >= SPLICE_THRESHOLD) big.set(i, t.rawData);
    });
  }
  if (!graph || big.size === 0) return [toBinary(ModelProtoSchema, proto)];
  const empty = new Uint8Array(0);
  for (const i of big.keys()) graph.initializer[i]!.rawData = empty;
  let small: Uint8Array;
  try {
    small = toBinary(ModelProtoSchema, proto);
  } finally {
    for (const [i, bytes] of big) graph.initializer[i]!.rawData = bytes as Uint8Array<ArrayBuffer>;
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
      const bytes = big.get(initIndex++);
      if (!bytes) {
        graphChunks.push(small.subarray(gf.start, gf.end));
        continue;
      }
      const tensorChunks: Chunks = [];
      for (const tf of fields(small, gf.payloadStart, gf.end)) {
        if (tf.field === TENSOR_RAW_DATA && tf.wireType === 2 && tf.end === tf.payloadStart) {
          tensorChunks.push(tagBytes(small, tf), varint(bytes.byteLength), bytes);
        } else tensorChunks.push(small.subarray(tf.start, tf.end));
      }
      graphChunks.push(tagBytes(small, gf), varint(size(tensorChunks)), ...tensorChunks);
    }
    out.push(tagBytes(small, mf), varint(size(graphChunks)), ...graphChunks);
  }
  return out;
}
