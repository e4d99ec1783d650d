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

export function parseSafetensors(bytes: Uint8Array, what = 'input'): SafeFile {
  const bad = (why: string) => new PeanutError('E_BAD_SAFETENSORS', `${what} is not a valid safetensors file: ${why}`);
  if (bytes.byteLength < 8) throw bad('too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen > bytes.byteLength - 8) throw bad('header length exceeds file size');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch {
    throw bad('header is not JSON');
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: SafeDtype; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) throw bad(`tensor '${name}' has unsupported dtype ${dtype}`);
    const [begin, end] = data_offsets;
    const n = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== n * BYTES[dtype] || dataStart + end > bytes.byteLength) throw bad(`tensor '${name}' has inconsistent offsets`);
    // Uint8Array.prototype.slice copies (a Node Buffer's own slice would share the whole file).
    const copy = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    tensors.set(name, { dtype, shape, data: view(dtype, copy.buffer) });
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
