/**
 * ONNX element types: names, byte sizes, and conversions between stored bytes and float32.
 * Half-precision types are converted by hand because Node 20 has no Float16Array.
 */
import { TensorProto_DataType as DT } from 'onnx-buf';
import { PeanutError } from '../errors.ts';

export { DT as DataType };

const NAMES: Record<number, string> = {
  [DT.FLOAT]: 'float32',
  [DT.UINT8]: 'uint8',
  [DT.INT8]: 'int8',
  [DT.UINT16]: 'uint16',
  [DT.INT16]: 'int16',
  [DT.INT32]: 'int32',
  [DT.INT64]: 'int64',
  [DT.STRING]: 'string',
  [DT.BOOL]: 'bool',
  [DT.FLOAT16]: 'float16',
  [DT.DOUBLE]: 'float64',
  [DT.UINT32]: 'uint32',
  [DT.UINT64]: 'uint64',
  [DT.BFLOAT16]: 'bfloat16',
};

const SIZES: Record<number, number> = {
  [DT.FLOAT]: 4,
  [DT.UINT8]: 1,
  [DT.INT8]: 1,
  [DT.UINT16]: 2,
  [DT.INT16]: 2,
  [DT.INT32]: 4,
  [DT.INT64]: 8,
  [DT.BOOL]: 1,
  [DT.FLOAT16]: 2,
  [DT.DOUBLE]: 8,
  [DT.UINT32]: 4,
  [DT.UINT64]: 8,
  [DT.BFLOAT16]: 2,
};

export function dtypeName(dt: number): string {
  return NAMES[dt] ?? `dtype#${dt}`;
}

export function dtypeSize(dt: number): number {
  const s = SIZES[dt];
  if (s === undefined) throw new PeanutError('E_DTYPE', `unsupported tensor element type ${dtypeName(dt)}`);
  return s;
}

/** Floating types PEANuT can adapt and differentiate. */
export function isFloatType(dt: number): boolean {
  return dt === DT.FLOAT || dt === DT.FLOAT16 || dt === DT.BFLOAT16 || dt === DT.DOUBLE;
}

// ---- half precision ----------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even. */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half += 1;
  return sign | half;
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 -> bfloat16 bits, round to nearest even. */
export function floatToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const rounding = 0x7fff + ((x >>> 16) & 1);
  return ((x + rounding) >>> 16) & 0xffff;
}

export function bf16BitsToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

/** Decodes little-endian stored bytes of a floating type into float32. */
export function bytesToFloat32(bytes: Uint8Array, dt: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dt) {
    case DT.FLOAT: {
      if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
      // Unaligned (a view into a decoded file): one memcpy into a fresh buffer beats a DataView loop.
      // (Uint8Array.prototype.slice copies; a Node Buffer's own slice would not.)
      return new Float32Array(Uint8Array.prototype.slice.call(bytes).buffer);
    }
    case DT.DOUBLE: {
      const out = new Float32Array(bytes.byteLength / 8);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case DT.FLOAT16: {
      const out = new Float32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfBitsToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case DT.BFLOAT16: {
      const out = new Float32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = bf16BitsToFloat(view.getUint16(i * 2, true));
      return out;
    }
    default:
      throw new PeanutError('E_DTYPE', `expected a floating tensor, got ${dtypeName(dt)}`);
  }
}

/** Encodes float32 values as little-endian bytes of a floating type. */
export function float32ToBytes(values: Float32Array, dt: number): Uint8Array {
  switch (dt) {
    case DT.FLOAT:
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case DT.DOUBLE: {
      const out = new Float64Array(values);
      return new Uint8Array(out.buffer);
    }
    case DT.FLOAT16:
    case DT.BFLOAT16: {
      const out = new Uint16Array(values.length);
      const conv = dt === DT.FLOAT16 ? floatToHalfBits : floatToBf16Bits;
      for (let i = 0; i < values.length; i++) out[i] = conv(values[i]!);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new PeanutError('E_DTYPE', `cannot store float values as ${dtypeName(dt)}`);
  }
}
