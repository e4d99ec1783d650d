/**
 * Reading a large inline model without reading its tensor bytes. The file's protobuf wire format
 * is scanned with positioned reads along ModelProto.graph (7) → GraphProto.initializer (5) →
 * TensorProto.raw_data (9), and a **skeleton** is assembled: every byte of the file except the
 * payloads of large raw_data fields, which become empty raw_data fields, with the length prefixes
 * of the enclosing tensor and graph re-encoded. The skeleton decodes with the ordinary codec; the
 * caller then points each emptied tensor at its byte range in the file (`deferTensorToFile`).
 *
 * Only the main graph's initializers are deferred (tensors of nested subgraphs, Constant nodes and
 * typed repeated fields stay in the skeleton). A tensor is left whole when it has more than one
 * raw_data field or any external-data field. Anything the scan does not understand (a second graph
 * field, group wire types, lengths past the end) makes it give up, and the caller reads the file
 * whole instead, so malformed files get the ordinary decoder's error.
 */
import { readSync } from 'node:fs';
import { encodeVarint } from '../onnx/encode-chunks.ts';

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;

/** The skeleton of a model file and the file ranges its emptied tensors' bytes live in. */
export interface Skeleton {
  bytes: Uint8Array;
  /** Number of initializer fields in the main graph. */
  initializers: number;
  /** Initializer index (in file order) → byte range of its raw_data payload in the file. */
  ranges: Map<number, { offset: number; length: number }>;
}

/** The scan met something it does not handle; the caller falls back to reading the whole file. */
class GiveUp extends Error {}

/** Positioned reads through one small cached block (headers are small and mostly sequential). */
class Reader {
  private readonly block = new Uint8Array(64 * 1024);
  private blockStart = 0;
  private blockLen = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  byte(pos: number): number {
    if (pos < this.blockStart || pos >= this.blockStart + this.blockLen) {
      if (pos >= this.size) throw new GiveUp();
      this.blockStart = pos;
      this.blockLen = readSync(this.fd, this.block, 0, Math.min(this.block.byteLength, this.size - pos), pos);
      if (this.blockLen <= 0) throw new GiveUp();
    }
    return this.block[pos - this.blockStart]!;
  }

  varint(pos: number): [number, number] {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(pos++);
      result += (b & 0x7f) * mul;
      if (b < 0x80) return [result, pos];
      mul *= 0x80;
    }
    throw new GiveUp();
  }
}

interface Field {
  field: number;
  wireType: number;
  start: number;
  /** End of the tag varint. */
  tagEnd: number;
  /** Start of the payload (after the length varint of a length-delimited field). */
  payloadStart: number;
  end: number;
}

function readField(r: Reader, pos: number, limit: number): Field {
  const start = pos;
  const [tag, tagEnd] = r.varint(pos);
  const field = Math.floor(tag / 8);
  const wireType = tag & 7;
  if (field === 0) throw new GiveUp();
  let payloadStart = tagEnd;
  let end: number;
  switch (wireType) {
    case 0:
      end = r.varint(tagEnd)[1];
      break;
    case 1:
      end = tagEnd + 8;
      break;
    case 2: {
      const [len, p] = r.varint(tagEnd);
      payloadStart = p;
      end = p + len;
      break;
    }
    case 5:
      end = tagEnd + 4;
      break;
    default:
      throw new GiveUp();
  }
  if (end > limit) throw new GiveUp();
  return { field, wireType, start, tagEnd, payloadStart, end };
}

/** A piece of the skeleton: a range of the file, or bytes made here. */
type Piece = { offset: number; length: number } | Uint8Array;

class Pieces {
  readonly list: Piece[] = [];
  size = 0;

  file(offset: number, length: number): void {
    const last = this.list[this.list.length - 1];
    if (last && !(last instanceof Uint8Array) && last.offset + last.length === offset) last.length += length;
    else this.list.push({ offset, length });
    this.size += length;
  }

  bytes(b: Uint8Array): void {
    this.list.push(b);
    this.size += b.byteLength;
  }

  append(other: Pieces): void {
    for (const p of other.list) {
      if (p instanceof Uint8Array) this.bytes(p);
      else this.file(p.offset, p.length);
    }
  }
}

const EMPTY_LENGTH = Uint8Array.of(0);

/** A length-delimited field whose payload changed: its tag, the new length, the new payload. */
function wrap(out: Pieces, f: Field, payload: Pieces): void {
  out.file(f.start, f.tagEnd - f.start);
  out.bytes(encodeVarint(payload.size));
  out.append(payload);
}

/** A tensor's pieces with its raw_data emptied, or `undefined` to keep it whole. */
function scanTensor(r: Reader, start: number, end: number, minBytes: number): { pieces: Pieces; offset: number; length: number } | undefined {
  const fields: Field[] = [];
  for (let pos = start; pos < end; ) {
    const f = readField(r, pos, end);
    fields.push(f);
    pos = f.end;
  }
  const raw = fields.filter((f) => f.field === TENSOR_RAW_DATA);
  if (raw.length !== 1 || raw[0]!.wireType !== 2) return undefined;
  if (fields.some((f) => f.field === TENSOR_EXTERNAL_DATA || f.field === TENSOR_DATA_LOCATION)) return undefined;
  const rf = raw[0]!;
  const length = rf.end - rf.payloadStart;
  if (length < minBytes || length === 0) return undefined;
  const pieces = new Pieces();
  for (const f of fields) {
    if (f === rf) {
      pieces.file(f.start, f.tagEnd - f.start);
      pieces.bytes(EMPTY_LENGTH);
    } else pieces.file(f.start, f.end - f.start);
  }
  return { pieces, offset: rf.payloadStart, length };
}

/**
 * Scans a model file and assembles its skeleton, leaving out raw_data payloads of main-graph
 * initializers of at least `minBytes` bytes. `undefined` when the file is not laid out as this
 * scan expects (the caller then reads it whole).
 */
export function readSkeleton(fd: number, size: number, minBytes: number): Skeleton | undefined {
  const r = new Reader(fd, size);
  const ranges = new Map<number, { offset: number; length: number }>();
  let initializers = 0;
  const model = new Pieces();
  try {
    let graphs = 0;
    for (let pos = 0; pos < size; ) {
      const mf = readField(r, pos, size);
      pos = mf.end;
      if (mf.field !== MODEL_GRAPH || mf.wireType !== 2) {
        model.file(mf.start, mf.end - mf.start);
        continue;
      }
      if (++graphs > 1) return undefined;
      const graph = new Pieces();
      for (let gpos = mf.payloadStart; gpos < mf.end; ) {
        const gf = readField(r, gpos, mf.end);
        gpos = gf.end;
        if (gf.field !== GRAPH_INITIALIZER || gf.wireType !== 2) {
          graph.file(gf.start, gf.end - gf.start);
          continue;
        }
        const index = initializers++;
        const tensor = scanTensor(r, gf.payloadStart, gf.end, minBytes);
        if (!tensor) {
          graph.file(gf.start, gf.end - gf.start);
          continue;
        }
        ranges.set(index, { offset: tensor.offset, length: tensor.length });
        wrap(graph, gf, tensor.pieces);
      }
      wrap(model, mf, graph);
    }
  } catch (err) {
    if (err instanceof GiveUp) return undefined;
    throw err;
  }
  const bytes = new Uint8Array(model.size);
  let at = 0;
  for (const p of model.list) {
    if (p instanceof Uint8Array) {
      bytes.set(p, at);
      at += p.byteLength;
      continue;
    }
    for (let done = 0; done < p.length; ) {
      const n = readSync(fd, bytes, at + done, p.length - done, p.offset + done);
      if (n === 0) return undefined;
      done += n;
    }
    at += p.length;
  }
  return { bytes, initializers, ranges };
}
