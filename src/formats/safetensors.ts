/**
 * safetensors read/write: an 8-byte little-endian header length, a JSON header
 * `{__metadata__?, name: {dtype, shape, data_offsets}}`, then the raw little-endian bytes.
 * Used for tweaker state, gradients, checkpoints and datasets. Bytes in, bytes out: files are
 * read and written by src/node/safetensors-files.ts.
 */
import { PeanutError } from '../errors.ts';

export type SafeDtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type SafeData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** F16/BF16 are carried as raw Uint16 bits; BOOL as Uint8. */
  data: SafeData;
}

export interface SafeFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function view(dtype: SafeDtype, buf: ArrayBuffer): SafeData {
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return new Float64Array(buf);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'I16':
      return new Int16Array(buf);
    case 'I8':
      return new Int8Array(buf);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
  }
}

/** The reference implementation's bound on the JSON header (100 MB). */
const MAX_HEADER = 100_000_000;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Reads safetensors bytes, validated as the reference implementation validates them before any
 * tensor is read: a header length within the file (and at most 100 MB), a JSON object header,
 * string metadata, known dtypes, shapes of non-negative integers, and `data_offsets` that are
 * non-negative, ordered, exactly the size the dtype and shape imply, and that tile the data
 * section with no gap or overlap (so no tensor can hold header bytes or another tensor's bytes).
 *
 * @param what - how messages name the input (a file path)
 * @throws PeanutError E_BAD_SAFETENSORS naming the problem
 */
export function parseSafetensors(bytes: Uint8Array, what = 'input'): SafeFile {
  const bad = (why: string) => new PeanutError('E_BAD_SAFETENSORS', `${what} is not a valid safetensors file: ${why}`);
  if (bytes.byteLength < 8) throw bad('too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = dv.getBigUint64(0, true);
  if (headerLen > BigInt(bytes.byteLength - 8)) throw bad('header length exceeds file size');
  if (headerLen > BigInt(MAX_HEADER)) throw bad(`header of ${headerLen} bytes is larger than the format allows (100 MB)`);
  const dataStart = 8 + Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch {
    throw bad('header is not JSON');
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
  const dataLength = bytes.byteLength - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  const spans: Array<{ name: string; begin: number; end: number; dtype: SafeDtype; shape: number[] }> = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null) continue;
      if (typeof info !== 'object' || Array.isArray(info) || Object.values(info as object).some((v) => typeof v !== 'string')) throw bad("'__metadata__' is not a map of strings");
      metadata = info as Record<string, string>;
      continue;
    }
    if (!info || typeof info !== 'object') throw bad(`tensor '${name}' has no dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !Object.hasOwn(BYTES, dtype)) throw bad(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`tensor '${name}' has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) throw bad(`tensor '${name}' has data_offsets ${JSON.stringify(offsets)}, not two non-negative integers`);
    const [begin, end] = offsets as [number, number];
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    const size = n * BYTES[dtype as SafeDtype];
    if (begin > end || !Number.isSafeInteger(size) || end - begin !== size) throw bad(`tensor '${name}' has data_offsets [${begin}, ${end}], but its dtype and shape take ${size} bytes`);
    if (end > dataLength) throw bad(`tensor '${name}' ends at byte ${end} of a ${dataLength}-byte data section (truncated file?)`);
    spans.push({ name, begin, end, dtype: dtype as SafeDtype, shape: shape as number[] });
  }
  spans.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let at = 0;
  for (const t of spans) {
    if (t.begin !== at) throw bad(t.begin < at ? `tensor '${t.name}' overlaps another tensor's bytes` : `there are ${t.begin - at} unused bytes before tensor '${t.name}'`);
    at = t.end;
  }
  if (at !== dataLength) throw bad(`${dataLength - at} bytes after the last tensor belong to none`);
  for (const t of spans) {
    // Uint8Array.prototype.slice copies (a Node Buffer's own slice would share the whole file).
    const copy = Uint8Array.prototype.slice.call(bytes, dataStart + t.begin, dataStart + t.end);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: view(t.dtype, copy.buffer) });
  }
  return { tensors, metadata };
}

export function encodeSafetensors(tensors: Map<string, SafeTensor> | Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array[] {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new PeanutError('E_SHAPE_MISMATCH', `tensor '${name}': ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
  const raw = new TextEncoder().encode(json);
  const pad = (8 - (raw.byteLength % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  return [len, headerBytes, ...entries.map(([, t]) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))];
}

export const f32 = (shape: number[], data: Float32Array): SafeTensor => ({ dtype: 'F32', shape, data });
