/**
 * Loading and saving ModelProto files, including the external-data layout Hugging Face uses past
 * 2 GB (`model.onnx` + `model.onnx_data`). Decoding keeps tensor bytes as views into the file
 * buffer; external tensors stay on disk until someone asks for their bytes.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { tempPathFor, writeAll, writeFileAtomic } from '../util/atomic.ts';
import {
  create,
  fromBinary,
  toBinary,
  DataLocation,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  type GraphProto,
  type ModelProto,
  type TensorProto,
} from './proto.ts';
import { externalRef, isExternal, materializeDeferred, numElements, tensorBytes, tensorDims } from './tensor.ts';
import { dtypeSize } from './dtype.ts';
import { encodeModelChunks } from './encode-chunks.ts';

/** A decoded model and the directory its external data locations are relative to. */
export interface OnnxModel {
  proto: ModelProto;
  baseDir: string;
  /** The file it was read from, if any. */
  path?: string;
}

export function graphOf(model: OnnxModel): GraphProto {
  const g = model.proto.graph;
  if (!g) throw new PeanutError('E_NOT_ONNX', 'model has no graph');
  return g;
}

/** Decodes ONNX bytes; a clear error for anything that is not a model. */
export function decodeModel(bytes: Uint8Array, what = 'input'): ModelProto {
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    throw new PeanutError('E_NOT_ONNX', `${what} is not a valid ONNX model (protobuf decode failed: ${(err as Error).message}); is the file truncated or of another format?`);
  }
  const g = proto.graph;
  if (proto.irVersion <= 0n || !g || proto.opsetImport.length === 0) {
    throw new PeanutError('E_NOT_ONNX', `${what} is not an ONNX model (no IR version, graph or opset import)`);
  }
  for (const n of g.node) {
    if (!n.opType) throw new PeanutError('E_NOT_ONNX', `${what} is not a valid ONNX model (a node has no op type); is the file corrupt?`);
  }
  return proto;
}

export function loadModel(path: string): OnnxModel {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `file not found: ${path}`);
  if (statSync(path).isDirectory()) throw new PeanutError('E_NOT_ONNX', `${path} is a directory, not an .onnx file`);
  const bytes = readFileSync(path);
  if (bytes.byteLength === 0) throw new PeanutError('E_NOT_ONNX', `${path} is empty, not an ONNX model`);
  const proto = decodeModel(bytes, path);
  return { proto, baseDir: dirname(resolve(path)), path: resolve(path) };
}

export interface SaveOptions {
  /**
   * Store large tensors in `<file>_data` beside the model. Default: when the source model used
   * external data, or when the model would exceed protobuf's 2 GB limit.
   */
  externalData?: boolean;
  /** Tensors smaller than this many bytes stay inline when writing external data (default 1024). */
  sizeThreshold?: number;
}

const PROTOBUF_LIMIT = 2 ** 31 - 1;

function tensorByteLength(t: TensorProto): number {
  if (isExternal(t)) return externalRef(t).length;
  if (t.rawData.byteLength > 0) return t.rawData.byteLength;
  try {
    return numElements(tensorDims(t)) * dtypeSize(t.dataType);
  } catch {
    return 0;
  }
}

/** Every initializer of the main graph and of nested subgraphs. */
export function allInitializers(graph: GraphProto): TensorProto[] {
  const out: TensorProto[] = [...graph.initializer];
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.g) out.push(...allInitializers(a.g));
      for (const sg of a.graphs) out.push(...allInitializers(sg));
    }
  }
  return out;
}

/**
 * The external data files a model references, as session options want them: `path` is the
 * location written in the model, `data` the file on disk (`<baseDir>/<location>`).
 */
export function externalDataFiles(model: OnnxModel): Array<{ path: string; data: string }> {
  const locs = new Set<string>();
  for (const t of allInitializers(graphOf(model))) if (isExternal(t)) locs.add(externalRef(t).location);
  return [...locs].map((loc) => ({ path: loc, data: join(model.baseDir, loc) }));
}

/** Deferred tensors (see `deferTensorBytes`) that are not external references get their bytes. */
function materializeAll(graph: GraphProto): void {
  for (const t of allInitializers(graph)) if (!isExternal(t)) materializeDeferred(t);
}

/** Encodes a model; inline tensors only (callers go through saveModel for files). */
export function encodeModel(proto: ModelProto): Uint8Array {
  if (proto.graph) materializeAll(proto.graph);
  return toBinary(ModelProtoSchema, proto);
}

/**
 * Writes `model` to `outPath` atomically (temp files + rename). With external data the tensor
 * bytes are streamed into `<outPath>_data` one tensor at a time: tensors that already live in
 * external data are copied from their source file in 8 MB chunks (never read whole), in-memory
 * tensors (e.g. merged weights) are written from memory. Peak memory is independent of model size.
 */
export function saveModel(model: OnnxModel, outPath: string, options: SaveOptions = {}): void {
  const graph = graphOf(model);
  const inits = allInitializers(graph);
  const hadExternal = inits.some(isExternal);
  const total = inits.reduce((s, t) => s + tensorByteLength(t), 0);
  const external = options.externalData ?? (hadExternal || total > PROTOBUF_LIMIT - 64 * 2 ** 20);
  if (!external) {
    if (hadExternal) internalizeAll(inits, model.baseDir);
    materializeAll(graph);
    writeFileAtomic(outPath, ...encodeModelChunks(model.proto));
    return;
  }
  const threshold = options.sizeThreshold ?? 1024;
  const dataName = `${basename(outPath)}_data`;
  const dataPath = join(dirname(resolve(outPath)), dataName);
  const dataTmp = tempPathFor(dataPath);
  const fd = openSync(dataTmp, 'w');
  // Tensors are swapped for external references only while encoding, then restored, so the
  // in-memory model is unchanged by a save.
  const restore: Array<[TensorProto, TensorProto]> = [];
  // Source data files stay open for the whole save; external tensors are copied through one
  // reusable chunk buffer, so no tensor (let alone the model) is ever held in memory whole.
  const sources = new Map<string, number>();
  const chunk = new Uint8Array(COPY_CHUNK);
  try {
    let offset = 0;
    for (const t of inits) {
      const len = tensorByteLength(t);
      if (len < threshold && !isExternal(t)) continue;
      let written: number;
      if (isExternal(t)) {
        const ref = externalRef(t);
        const src = join(model.baseDir, ref.location);
        let sfd = sources.get(src);
        if (sfd === undefined) {
          sfd = openSource(src);
          sources.set(src, sfd);
        }
        copyRange(sfd, src, ref.offset, ref.length, fd, chunk);
        written = ref.length;
      } else {
        const bytes = tensorBytes(t, model.baseDir);
        writeAll(fd, bytes);
        written = bytes.byteLength;
      }
      const saved = create(TensorProtoSchema, { ...t });
      restore.push([t, saved]);
      t.rawData = new Uint8Array(0);
      t.floatData = [];
      t.int32Data = [];
      t.int64Data = [];
      t.doubleData = [];
      t.uint64Data = [];
      t.dataLocation = DataLocation.EXTERNAL;
      t.externalData = [
        create(StringStringEntryProtoSchema, { key: 'location', value: dataName }),
        create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: 'length', value: String(written) }),
      ];
      offset += written;
    }
    fsyncSync(fd);
    closeSync(fd);
    const encoded = encodeModel(model.proto);
    renameSync(dataTmp, dataPath);
    writeFileAtomic(outPath, encoded);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(dataTmp, { force: true });
    throw err;
  } finally {
    for (const sfd of sources.values()) closeSync(sfd);
    for (const [t, saved] of restore) {
      // proto2 fields set during the swap (data_location) must become unset again, not just reassigned.
      for (const k of Object.keys(t)) if (!Object.hasOwn(saved, k)) Reflect.deleteProperty(t, k);
      Object.assign(t, saved);
    }
  }
}

/** Bytes copied per read/write when streaming external tensors into a new data file. */
const COPY_CHUNK = 8 * 2 ** 20;

function openSource(path: string): number {
  try {
    return openSync(path, 'r');
  } catch {
    throw new PeanutError('E_FILE_NOT_FOUND', `external data file '${path}' not found (it must sit beside the .onnx file)`);
  }
}

/** Copies `length` bytes at `offset` of `src` to the current position of `dst`, chunk by chunk. */
function copyRange(src: number, srcPath: string, offset: number, length: number, dst: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < length) {
    const want = Math.min(chunk.byteLength, length - done);
    let got = 0;
    while (got < want) {
      const n = readSync(src, chunk, got, want - got, offset + done + got);
      if (n === 0) throw new PeanutError('E_NOT_ONNX', `external data file '${srcPath}' is truncated: need bytes ${offset}..${offset + length}`);
      got += n;
    }
    writeAll(dst, chunk.subarray(0, want));
    done += want;
  }
}

function internalizeAll(inits: TensorProto[], baseDir: string): void {
  for (const t of inits) {
    if (!isExternal(t)) continue;
    const bytes = tensorBytes(t, baseDir);
    t.rawData = bytes as Uint8Array<ArrayBuffer>;
    t.externalData = [];
    t.dataLocation = DataLocation.DEFAULT;
  }
}
