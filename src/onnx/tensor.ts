/**
 * Tensor values: reading the bytes of a TensorProto wherever they live (raw_data, typed repeated
 * fields, or an external data file) and making new tensors. Reads of external data go to the
 * file on demand, so unrelated tensors of a large model are never loaded.
 */
import { create, DataLocation, TensorProtoSchema, type TensorProto } from './proto.ts';
import { DataType as DT, bytesToFloat32, dtypeName, dtypeSize, float32ToBytes } from './dtype.ts';
import { PeanutError } from '../errors.ts';
import { fileReader, type SourceRange } from './files.ts';

export type { FileIdentity, SourceRange } from './files.ts';

export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

export function tensorDims(t: TensorProto): number[] {
  return t.dims.map(Number);
}

export function numElements(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === DataLocation.EXTERNAL;
}

export function externalRef(t: TensorProto): ExternalRef {
  const entry = (key: string) => t.externalData.find((e) => e.key === key)?.value;
  const location = entry('location');
  if (!location) throw new PeanutError('E_NOT_ONNX', `tensor '${t.name}' is marked external but names no location`);
  const offset = Number(entry('offset') ?? 0);
  const length = entry('length');
  const expected = numElements(tensorDims(t)) * dtypeSize(t.dataType);
  return { location, offset, length: length === undefined ? expected : Number(length) };
}

const deferred = new WeakMap<TensorProto, () => Uint8Array>();
const sourced = new WeakMap<TensorProto, SourceRange>();

/**
 * Makes a tensor's bytes computed on demand: `produce` runs each time the bytes are read
 * (`tensorBytes`), nothing is cached. `saveModel` writes such a tensor straight into the data
 * file and lets the bytes go, so a merge can produce one weight at a time while saving. The
 * tensor keeps its dims and type and holds no data of its own; giving it bytes of its own
 * (`setTensorBytes`, or any non-empty raw_data) ends the deferral.
 */
export function deferTensorBytes(t: TensorProto, produce: () => Uint8Array): void {
  sourced.delete(t);
  deferred.set(t, produce);
}

/**
 * Makes a tensor's bytes a range of a file (see `loadModel`'s lazy path): `tensorBytes` reads the
 * range each time it is asked, `saveModel` and `encodeModel` copy it from the file in chunks.
 * The file must stay as it was until the model is no longer used: a file that was replaced,
 * rewritten or removed since is refused with `E_SOURCE_CHANGED` / `E_FILE_NOT_FOUND` when the
 * bytes are next needed (size, mtime and inode are compared; an edit that keeps all three is
 * not detected). No file stays open between reads. As with `deferTensorBytes`, giving the tensor
 * bytes of its own ends the deferral.
 */
export function deferTensorToFile(t: TensorProto, range: SourceRange): void {
  deferred.delete(t);
  sourced.set(t, range);
}

/**
 * A tensor's deferral, while it applies: a tensor that was given bytes of its own since (non-empty
 * raw_data, e.g. by `setTensorBytes` or a direct assignment) or that is an external reference
 * reads those instead.
 */
function deferral(t: TensorProto): { produce?: () => Uint8Array; source?: SourceRange } | undefined {
  if (t.rawData.byteLength > 0 || isExternal(t)) return undefined;
  const produce = deferred.get(t);
  if (produce) return { produce };
  const source = sourced.get(t);
  return source ? { source } : undefined;
}

/** Whether a tensor's bytes are produced on demand or read from its source file on demand. */
export function isDeferred(t: TensorProto): boolean {
  return deferral(t) !== undefined;
}

/** The file range a lazily loaded tensor reads its bytes from, if it is one. */
export function deferredSource(t: TensorProto): SourceRange | undefined {
  return deferral(t)?.source;
}

/**
 * The byte length of a deferred tensor without producing its bytes: the source range's length,
 * or elements × element size for computed tensors. `undefined` if `t` is not deferred.
 */
export function deferredLength(t: TensorProto): number | undefined {
  const d = deferral(t);
  if (!d) return undefined;
  return d.source ? d.source.length : numElements(tensorDims(t)) * dtypeSize(t.dataType);
}

/** A deferred tensor's bytes (computed, or read from its source), or `undefined` if not deferred. */
export function deferredBytes(t: TensorProto): Uint8Array | undefined {
  const d = deferral(t);
  if (!d) return undefined;
  if (d.produce) return d.produce();
  const out = new Uint8Array(d.source!.length);
  fileReader().readSource(d.source!, out);
  return out;
}

/** Stores a deferred tensor's bytes as raw_data, so it no longer depends on `produce` or a file. */
export function materializeDeferred(t: TensorProto): void {
  const bytes = deferredBytes(t);
  if (!bytes) return;
  t.rawData = bytes as Uint8Array<ArrayBuffer>;
  deferred.delete(t);
  sourced.delete(t);
}

/**
 * The little-endian bytes of a tensor. `baseDir` resolves external data locations. For raw_data
 * tensors this is a view (no copy).
 */
export function tensorBytes(t: TensorProto, baseDir: string): Uint8Array {
  const lazy = deferredBytes(t);
  if (lazy) return lazy;
  if (isExternal(t)) {
    const ref = externalRef(t);
    return fileReader().readExternal(baseDir, ref.location, ref.offset, ref.length);
  }
  if (t.rawData.byteLength > 0) return t.rawData;
  const n = numElements(tensorDims(t));
  switch (t.dataType) {
    case DT.FLOAT:
      return new Uint8Array(Float32Array.from(t.floatData).buffer);
    case DT.DOUBLE:
      return new Uint8Array(Float64Array.from(t.doubleData).buffer);
    case DT.INT64:
      return new Uint8Array(BigInt64Array.from(t.int64Data).buffer);
    case DT.UINT64:
      return new Uint8Array(BigUint64Array.from(t.uint64Data).buffer);
    case DT.INT32:
      return new Uint8Array(Int32Array.from(t.int32Data).buffer);
    case DT.FLOAT16:
    case DT.BFLOAT16:
    case DT.UINT16:
    case DT.INT16:
      return new Uint8Array(Uint16Array.from(t.int32Data).buffer);
    case DT.INT8:
      return new Uint8Array(Int8Array.from(t.int32Data).buffer);
    case DT.UINT8:
    case DT.BOOL:
      return Uint8Array.from(t.int32Data);
    default:
      if (n === 0) return new Uint8Array(0);
      throw new PeanutError('E_DTYPE', `cannot read tensor '${t.name}' of type ${dtypeName(t.dataType)}`);
  }
}

/**
 * A floating tensor's values as float32 (fp16/bf16/fp64 converted), in an array of the caller's
 * own (never a view of the tensor's storage).
 */
export function tensorToFloat32(t: TensorProto, baseDir: string): Float32Array {
  const fresh = deferredSource(t) !== undefined || isExternal(t);
  const b = tensorBytes(t, baseDir);
  // Bytes read from a file are a fresh buffer of their own: float32 ones are used without another copy.
  if (fresh && t.dataType === DT.FLOAT && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength % 4 === 0) return new Float32Array(b.buffer);
  return bytesToFloat32(b, t.dataType);
}

/** An integer tensor's values as numbers (int64/int32 and smaller). */
export function tensorToInts(t: TensorProto, baseDir: string): number[] {
  const b = tensorBytes(t, baseDir);
  // A copy of exactly these bytes: `b` may be a view into a larger buffer (a Node Buffer's pool,
  // the model file), so neither `b.buffer` nor `Buffer#slice` (which does not copy) would do.
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  switch (t.dataType) {
    case DT.INT64:
      return Array.from(new BigInt64Array(copy.buffer), Number);
    case DT.INT32:
      return Array.from(new Int32Array(copy.buffer));
    case DT.INT8:
      return Array.from(new Int8Array(copy.buffer));
    case DT.UINT8:
    case DT.BOOL:
      return Array.from(copy);
    default:
      return Array.from(bytesToFloat32(b, t.dataType));
  }
}

/** Replaces a tensor's contents in place with raw bytes (dims and type unchanged). */
export function setTensorBytes(t: TensorProto, bytes: Uint8Array): void {
  deferred.delete(t);
  sourced.delete(t);
  t.rawData = bytes as Uint8Array<ArrayBuffer>;
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.uint64Data = [];
  t.externalData = [];
  t.dataLocation = DataLocation.DEFAULT;
}

export function makeTensor(name: string, dataType: number, dims: readonly number[], bytes: Uint8Array): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dataType,
    dims: dims.map(BigInt),
    rawData: bytes as Uint8Array<ArrayBuffer>,
  });
}

export function floatTensor(name: string, dims: readonly number[], values: Float32Array | readonly number[], dataType: number = DT.FLOAT): TensorProto {
  const arr = values instanceof Float32Array ? values : Float32Array.from(values);
  if (arr.length !== numElements(dims)) {
    throw new PeanutError('E_SHAPE_MISMATCH', `tensor '${name}': ${arr.length} values for shape [${dims.join(', ')}]`);
  }
  return makeTensor(name, dataType, dims, float32ToBytes(arr, dataType));
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[] | readonly bigint[]): TensorProto {
  const arr = BigInt64Array.from(values as readonly (number | bigint)[], (v) => BigInt(v));
  return makeTensor(name, DT.INT64, dims, new Uint8Array(arr.buffer));
}
