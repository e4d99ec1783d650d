/**
 * A tree of JSON values and typed arrays as one byte buffer, so tensors cross between Node and a
 * page exactly (no float → decimal text → float, BigInt64 kept). Runs in both (no node: imports).
 *
 * Layout: [u32 LE header length][header: UTF-8 JSON][padding to 8][blobs, each 8-aligned].
 * In the header a typed array is `{"$typed": "<constructor name>", "offset": n, "length": n}`,
 * offset in bytes from the start of the blobs.
 */

const TYPED = {
  Float32Array,
  Float64Array,
  Int8Array,
  Uint8Array,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedName = keyof typeof TYPED;
type Typed = InstanceType<(typeof TYPED)[TypedName]>;

interface TypedRef {
  $typed: TypedName;
  offset: number;
  length: number;
}

const align8 = (n: number) => (n + 7) & ~7;

function typedName(x: unknown): TypedName | undefined {
  if (!ArrayBuffer.isView(x) || x instanceof DataView) return undefined;
  const name = x.constructor.name as TypedName;
  return name in TYPED ? name : undefined;
}

/** Encodes `value` (JSON-compatible, typed arrays anywhere inside). */
export function pack(value: unknown): Uint8Array {
  const blobs: Typed[] = [];
  let size = 0;
  const header = JSON.stringify(value, (_key, v: unknown) => {
    const name = typedName(v);
    if (!name) return v;
    const t = v as Typed;
    const ref: TypedRef = { $typed: name, offset: size, length: t.length };
    blobs.push(t);
    size = align8(size + t.byteLength);
    return ref;
  });
  const head = new TextEncoder().encode(header);
  const start = align8(4 + head.length);
  const out = new Uint8Array(start + size);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  let offset = 0;
  for (const t of blobs) {
    out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), start + offset);
    offset = align8(offset + t.byteLength);
  }
  return out;
}

/** Decodes what `pack` encoded; typed arrays are fresh copies. */
export function unpack<T = unknown>(bytes: Uint8Array): T {
  const headLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  const header = new TextDecoder().decode(bytes.subarray(4, 4 + headLength));
  const start = align8(4 + headLength);
  return JSON.parse(header, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || !('$typed' in v)) return v;
    const ref = v as TypedRef;
    const Ctor = TYPED[ref.$typed];
    const from = bytes.byteOffset + start + ref.offset;
    return new Ctor(bytes.buffer.slice(from, from + ref.length * Ctor.BYTES_PER_ELEMENT) as ArrayBuffer);
  }) as T;
}

/** Base64 of `bytes` (btoa exists in browsers and in Node ≥ 16). */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Inverse of `toBase64`. */
export function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
