/**
 * Load-time validation of a model's tensors: every initializer and every tensor-valued attribute
 * (Constant values and the like), in the main graph and in nested subgraphs, has a known element
 * type, dims that are non-negative safe integers, and exactly as many stored bytes (or typed
 * values) as its dims and type imply; an external tensor names a location and well-formed
 * `offset` / `length` fields, the length being the one its dims imply. Checking this once, when
 * a model is loaded, means no later step sizes a buffer from a forged dim or reads past a short
 * `raw_data`: a corrupt or hostile model is refused with one line before any work. Whether an
 * external range lies inside its file is the file layer's check (src/node/model-files.ts).
 */
import { PeanutError } from '../errors.ts';
import { DataType as DT, dtypeName } from './dtype.ts';
import type { AttributeProto, GraphProto, ModelProto, TensorProto } from './proto.ts';
import { deferredLength, isExternal } from './tensor.ts';

/** Bits per element of every ONNX element type this codec knows (STRING has no fixed size). */
const BITS: Readonly<Record<number, number>> = {
  [DT.FLOAT]: 32,
  [DT.UINT8]: 8,
  [DT.INT8]: 8,
  [DT.UINT16]: 16,
  [DT.INT16]: 16,
  [DT.INT32]: 32,
  [DT.INT64]: 64,
  [DT.BOOL]: 8,
  [DT.FLOAT16]: 16,
  [DT.DOUBLE]: 64,
  [DT.UINT32]: 32,
  [DT.UINT64]: 64,
  [DT.COMPLEX64]: 64,
  [DT.COMPLEX128]: 128,
  [DT.BFLOAT16]: 16,
  [DT.FLOAT8E4M3FN]: 8,
  [DT.FLOAT8E4M3FNUZ]: 8,
  [DT.FLOAT8E5M2]: 8,
  [DT.FLOAT8E5M2FNUZ]: 8,
  [DT.UINT4]: 4,
  [DT.INT4]: 4,
  [DT.FLOAT4E2M1]: 4,
  [DT.FLOAT8E8M0]: 8,
  [DT.UINT2]: 2,
  [DT.INT2]: 2,
};

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** The typed repeated field a tensor of type `dt` keeps its values in, and how many it must hold for `n` elements. */
function typedField(t: TensorProto, dt: number, n: number): { field: string; have: number; want: number } | undefined {
  const bits = BITS[dt]!;
  switch (dt) {
    case DT.FLOAT:
      return { field: 'float_data', have: t.floatData.length, want: n };
    case DT.COMPLEX64:
      return { field: 'float_data', have: t.floatData.length, want: 2 * n };
    case DT.DOUBLE:
      return { field: 'double_data', have: t.doubleData.length, want: n };
    case DT.COMPLEX128:
      return { field: 'double_data', have: t.doubleData.length, want: 2 * n };
    case DT.INT64:
      return { field: 'int64_data', have: t.int64Data.length, want: n };
    case DT.UINT32:
    case DT.UINT64:
      return { field: 'uint64_data', have: t.uint64Data.length, want: n };
    default:
      // int32_data holds every other type, sub-byte types packed (two 4-bit or four 2-bit values each).
      return { field: 'int32_data', have: t.int32Data.length, want: bits < 8 ? Math.ceil((n * bits) / 8) : n };
  }
}

/** A decimal byte count of an external-data entry, or undefined when absent. */
function externalNumber(t: TensorProto, key: string, where: string): number | undefined {
  const entry = t.externalData.find((e) => e.key === key);
  if (!entry) return undefined;
  const n = /^\d{1,16}$/.test(entry.value) ? Number(entry.value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new PeanutError('E_NOT_ONNX', `${where}: external data '${key}' is ${JSON.stringify(entry.value)}, not a byte count; the model is corrupt, re-export it`);
  }
  return n;
}

/**
 * Checks one tensor (see the module comment).
 *
 * @param where - how messages name it (`<model>: tensor 'x'`)
 * @throws PeanutError E_NOT_ONNX naming the tensor and what is wrong
 */
export function checkTensor(t: TensorProto, where: string): void {
  const bad = (why: string) => new PeanutError('E_NOT_ONNX', `${where} ${why}; the model is corrupt, re-export it`);
  const dt = t.dataType;
  if (dt !== DT.STRING && BITS[dt] === undefined) throw bad(`has element type ${dtypeName(dt)}, which is not an ONNX type`);
  let count = 1n;
  for (const d of t.dims) {
    if (d < 0n) throw bad(`has a negative dim (${d}) in [${t.dims.join(', ')}]`);
    count *= d;
    if (count > MAX) throw bad(`has dims [${t.dims.join(', ')}], more elements than any file can hold`);
  }
  const n = Number(count);
  const bytes = dt === DT.STRING ? undefined : Math.ceil((n * BITS[dt]!) / 8);
  if (bytes !== undefined && !Number.isSafeInteger(bytes)) throw bad(`has dims [${t.dims.join(', ')}], more bytes than any file can hold`);
  if (isExternal(t)) {
    const loc = t.externalData.find((e) => e.key === 'location')?.value;
    if (!loc || loc.includes('\0')) throw bad('is stored in external data but names no file (location)');
    if (dt === DT.STRING) throw bad('is a string tensor in external data, which ONNX does not allow');
    externalNumber(t, 'offset', where);
    const length = externalNumber(t, 'length', where);
    if (length !== undefined && length !== bytes) throw bad(`has external data length ${length}, but its dims [${t.dims.join(', ')}] and type ${dtypeName(dt)} take ${bytes} bytes`);
    if (t.rawData.byteLength > 0) throw bad('has both raw_data and external data');
    return;
  }
  const lazy = deferredLength(t);
  if (lazy !== undefined) {
    if (lazy !== bytes) throw bad(`has ${lazy} bytes of raw_data, but its dims [${t.dims.join(', ')}] and type ${dtypeName(dt)} take ${bytes}`);
    return;
  }
  if (dt === DT.STRING) {
    if (t.stringData.length !== n) throw bad(`holds ${t.stringData.length} strings for dims [${t.dims.join(', ')}]`);
    return;
  }
  if (t.rawData.byteLength > 0) {
    if (t.rawData.byteLength !== bytes) throw bad(`has ${t.rawData.byteLength} bytes of raw_data, but its dims [${t.dims.join(', ')}] and type ${dtypeName(dt)} take ${bytes}`);
    return;
  }
  const typed = typedField(t, dt, n)!;
  if (typed.have !== typed.want) {
    throw bad(typed.have === 0 ? `has no data for dims [${t.dims.join(', ')}]` : `holds ${typed.have} ${typed.field} values, but its dims [${t.dims.join(', ')}] take ${typed.want}`);
  }
}

function checkAttribute(a: AttributeProto, node: string, what: string): void {
  const where = `${what}: attribute '${a.name}' of node '${node}'`;
  if (a.t) checkTensor(a.t, where);
  for (const [i, t] of a.tensors.entries()) checkTensor(t, `${where} (tensor ${i})`);
  if (a.g) checkGraph(a.g, what);
  for (const g of a.graphs) checkGraph(g, what);
}

function checkGraph(g: GraphProto, what: string): void {
  for (const t of g.initializer) checkTensor(t, `${what}: tensor '${t.name}'`);
  for (const n of g.node) for (const a of n.attribute) checkAttribute(a, n.name || n.opType, what);
}

/**
 * Checks every tensor of a model (initializers and tensor attributes, nested graphs included).
 *
 * @param what - how messages name the model (its path)
 * @throws PeanutError E_NOT_ONNX for the first bad tensor
 */
export function checkModelTensors(proto: ModelProto, what: string): void {
  if (proto.graph) checkGraph(proto.graph, what);
}

/** Every tensor of a model: initializers and tensor attributes, nested graphs included. */
export function modelTensors(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const walk = (g: GraphProto) => {
    out.push(...g.initializer);
    for (const n of g.node) {
      for (const a of n.attribute) {
        if (a.t) out.push(a.t);
        out.push(...a.tensors);
        if (a.g) walk(a.g);
        for (const sg of a.graphs) walk(sg);
      }
    }
  };
  if (proto.graph) walk(proto.graph);
  return out;
}
