/**
 * Host tensors: what goes into and comes out of a session, as plain data (an onnxruntime type
 * name, a typed array, dims). The backends wrap them in their own `ort.Tensor`s.
 */
import { PeanutError } from '../errors.ts';
import { DataType as DT } from '../onnx/dtype.ts';
import type { SafeTensor } from '../formats/safetensors.ts';

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

export interface HostTensor {
  /** onnxruntime's type name: float32, float64, float16, int64, int32, bool, uint8, … */
  readonly type: string;
  readonly data: HostData;
  readonly dims: readonly number[];
}

/** A tensor as sessions take it: a type name, its data and dims (a host tensor, or a backend's own tensor). */
export interface TensorLike {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
}

/** Session inputs by name. */
export type Feeds = Record<string, TensorLike>;

const ORT_TYPE_TO_DT: Record<string, number> = {
  float32: DT.FLOAT,
  float64: DT.DOUBLE,
  float16: DT.FLOAT16,
  bfloat16: DT.BFLOAT16,
  int8: DT.INT8,
  uint8: DT.UINT8,
  int16: DT.INT16,
  uint16: DT.UINT16,
  int32: DT.INT32,
  uint32: DT.UINT32,
  int64: DT.INT64,
  uint64: DT.UINT64,
  bool: DT.BOOL,
  string: DT.STRING,
};

/** ONNX element type of an onnxruntime type name, or undefined for one it does not know. */
export function elemTypeOf(type: string): number | undefined {
  return ORT_TYPE_TO_DT[type];
}

/** ONNX element type of an onnxruntime type name. @throws PeanutError E_DTYPE for an unknown one. */
export function dtypeOfOrtType(type: string): number {
  const dt = ORT_TYPE_TO_DT[type];
  if (dt === undefined) throw new PeanutError('E_DTYPE', `unsupported onnxruntime tensor type '${type}'`);
  return dt;
}

export const f32Tensor = (data: Float32Array, dims: readonly number[]): HostTensor => ({ type: 'float32', data, dims });
export const f64Scalar = (x: number): HostTensor => ({ type: 'float64', data: Float64Array.of(x), dims: [] });
export const f32Scalar = (x: number): HostTensor => ({ type: 'float32', data: Float32Array.of(x), dims: [] });
export const i64Scalar = (x: number): HostTensor => ({ type: 'int64', data: BigInt64Array.of(BigInt(x)), dims: [] });

/** An int64 tensor from numbers or bigints. */
export function i64Tensor(data: BigInt64Array | readonly number[], dims: readonly number[]): HostTensor {
  const arr = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v));
  return { type: 'int64', data: arr, dims };
}

const SAFE_TO_ORT: Partial<Record<SafeTensor['dtype'], string>> = { F32: 'float32', F64: 'float64', F16: 'float16', I64: 'int64', I32: 'int32', BOOL: 'bool', U8: 'uint8', I8: 'int8', I16: 'int16' };

/** A host tensor from a safetensors tensor. @throws PeanutError E_DTYPE for a dtype sessions cannot take. */
export function hostFromSafe(name: string, t: SafeTensor): HostTensor {
  const type = SAFE_TO_ORT[t.dtype];
  if (!type) throw new PeanutError('E_DTYPE', `data tensor '${name}' has unsupported dtype ${t.dtype}`);
  return { type, data: t.data, dims: t.shape };
}

/** Host feeds from safetensors tensors. */
export function feedsFromSafe(tensors: ReadonlyMap<string, SafeTensor>): Feeds {
  const out: Feeds = {};
  for (const [k, v] of tensors) out[k] = hostFromSafe(k, v);
  return out;
}
