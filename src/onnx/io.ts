/**
 * Loading and saving ModelProto files, including the external-data layout Hugging Face uses past
 * 2 GB (`model.onnx` + `model.onnx_data`). Small files are read whole and decoded with tensor
 * bytes as views into the file buffer. Large inline files are loaded lazily: only a skeleton
 * without the large raw_data payloads is read, and those tensors read their bytes from the file
 * on demand (see `loadModel`). External tensors stay on disk until someone asks for their bytes.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { tempPathFor, writeAll, writeFileAtomic } from '../node/atomic.ts';
import {
  create,
  fromBinary,
  DataLocation,
  GraphProtoSchema,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  type GraphProto,
  type ModelProto,
  type TensorProto,
} from './proto.ts';
import {
  deferredBytes,
  deferredLength,
  deferredSource,
  deferTensorToFile,
  externalRef,
  fileIdentity,
  isExternal,
  materializeDeferred,
  numElements,
  openSourceRange,
  readFully,
  tensorBytes,
  tensorDims,
  type SourceRange,
} from './tensor.ts';
import { dtypeSize } from './dtype.ts';
import { encodeModelParts, type ModelPart } from './encode-chunks.ts';
import { readSkeleton } from './lazy-load.ts';

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

export interface LoadOptions {
  /**
   * Files of at least this many bytes are loaded lazily (default 64 MiB): the large raw_data
   * payloads of the main graph's initializers are not read, those tensors read their bytes from
   * the file when asked (see `deferTensorToFile`). Smaller files are read whole.
   */
  lazyThreshold?: number;
  /** On the lazy path, raw_data payloads of at least this many bytes are left in the file (default 64 KiB). */
  deferBytes?: number;
}

/** Files at least this large are loaded lazily by default. */
const LAZY_THRESHOLD = 64 * 2 ** 20;
/** Tensors at least this large are left in the file by a lazy load. */
const DEFER_BYTES = 64 * 1024;

/**
 * Reads an ONNX model. A large inline model is loaded lazily (`LoadOptions.lazyThreshold`): only
 * its graph and small tensors are read; each large initializer keeps its byte range in the file and
 * reads it on demand (`tensorBytes`), and `saveModel` / `encodeModel` copy those ranges from the
 * file in chunks. **The file must therefore stay unchanged while the model is in use**: a file
 * that is removed, replaced or rewritten after loading is refused (`E_FILE_NOT_FOUND`,
 * `E_SOURCE_CHANGED`) when a tensor's bytes are next needed, including when saving over the file
 * the model was loaded from; an in-place edit that keeps size, mtime and inode goes unnoticed.
 * No file descriptor stays open after this returns.
 */
export function loadModel(path: string, options: LoadOptions = {}): OnnxModel {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `file not found: ${path}`);
  if (statSync(path).isDirectory()) throw new PeanutError('E_NOT_ONNX', `${path} is a directory, not an .onnx file`);
  const abs = resolve(path);
  const model = (proto: ModelProto): OnnxModel => ({ proto, baseDir: dirname(abs), path: abs });
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (st.size === 0) throw new PeanutError('E_NOT_ONNX', `${path} is empty, not an ONNX model`);
    if (st.size >= (options.lazyThreshold ?? LAZY_THRESHOLD)) {
      const proto = loadLazily(fd, abs, fileIdentity(st), options.deferBytes ?? DEFER_BYTES, path);
      if (proto) return model(proto);
    }
    return model(decodeModel(readFileSync(fd), path));
  } finally {
    closeSync(fd);
  }
}

/** The lazy path of `loadModel`; `undefined` when the file is not laid out as the scan expects. */
function loadLazily(fd: number, abs: string, identity: SourceRange['identity'], deferBytes: number, what: string): ModelProto | undefined {
  const skeleton = readSkeleton(fd, identity.size, Math.max(1, deferBytes));
  if (!skeleton) return undefined;
  const proto = decodeModel(skeleton.bytes, what);
  const inits = proto.graph!.initializer;
  if (inits.length !== skeleton.initializers) return undefined;
  for (const i of skeleton.ranges.keys()) if (inits[i]!.rawData.byteLength !== 0) return undefined;
  for (const [i, range] of skeleton.ranges) deferTensorToFile(inits[i]!, { path: abs, offset: range.offset, length: range.length, identity });
  return proto;
}

export interface SaveOptions {
  /**
   * Store large tensors in `<file>_data` beside the model. Default: when the source model used
   * external data, or when the model would exceed protobuf's 2 GB limit.
   */
  externalData?: boolean;
  /** Tensors smaller than this many bytes stay inline when writing external data (default 1024). */
  sizeThreshold?: number;
  /**
   * Reference the data file an earlier `saveModel` into the same directory wrote (its return
   * value) instead of writing a new one: tensors it stored become references to it; any other
   * tensor is stored inline. For several graphs over the same frozen weights (the training and
   * evaluation graphs), so the weights are on disk once.
   */
  shareDataWith?: SavedData;
}

/** Where a save with external data put each tensor: `dataName` beside the model, by tensor. */
export interface SavedData {
  dataName: string;
  dir: string;
  refs: WeakMap<TensorProto, { offset: number; length: number }>;
}

const PROTOBUF_LIMIT = 2 ** 31 - 1;

function tensorByteLength(t: TensorProto): number {
  if (isExternal(t)) return externalRef(t).length;
  const deferred = deferredLength(t);
  if (deferred !== undefined) return deferred;
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

/**
 * Deferred tensors of nested subgraphs get their bytes (the main graph's are streamed by the
 * writers; see encodeModelParts).
 */
function materializeNested(graph: GraphProto): void {
  const main = new Set(graph.initializer);
  for (const t of allInitializers(graph)) if (!main.has(t) && !isExternal(t)) materializeDeferred(t);
}

/**
 * Encodes a model into one buffer; inline tensors only (callers go through saveModel for files).
 * Deferred tensors' bytes are read or computed straight into the buffer; the model is not
 * changed (except that deferred tensors of nested subgraphs are materialised).
 */
export function encodeModel(proto: ModelProto): Uint8Array {
  if (proto.graph) materializeNested(proto.graph);
  const parts = encodeModelParts(proto);
  if (parts.length === 1 && parts[0] instanceof Uint8Array) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + (p instanceof Uint8Array ? p.byteLength : p.length), 0));
  const sources = new SourceFiles();
  try {
    let at = 0;
    for (const p of parts) {
      if (p instanceof Uint8Array) {
        out.set(p, at);
        at += p.byteLength;
        continue;
      }
      const src = deferredSource(p.tensor);
      if (src) readFully(sources.open(src), src, out.subarray(at, at + p.length), src.offset);
      else out.set(checkedBytes(p.tensor, p.length), at);
      at += p.length;
    }
  } finally {
    sources.close();
  }
  return out;
}

/** A deferred tensor's computed bytes, checked against the length its encoding assumed. */
function checkedBytes(t: TensorProto, length: number): Uint8Array {
  const bytes = deferredBytes(t)!;
  if (bytes.byteLength !== length) throw new PeanutError('E_GRAPH', `tensor '${t.name}' produced ${bytes.byteLength} bytes, expected ${length} for its shape and type`);
  return bytes;
}

/** Source files of lazily loaded tensors, each opened (and checked) once while writing. */
class SourceFiles {
  private readonly fds = new Map<string, number>();

  open(src: SourceRange): number {
    let fd = this.fds.get(src.path);
    if (fd === undefined) {
      fd = openSourceRange(src);
      this.fds.set(src.path, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/** Writes model parts to `dest` atomically, copying lazily loaded tensors from their files in chunks. */
function writePartsAtomic(dest: string, parts: readonly ModelPart[]): void {
  const tmp = tempPathFor(dest);
  const fd = openSync(tmp, 'w');
  const sources = new SourceFiles();
  try {
    let chunk: Uint8Array | undefined;
    for (const p of parts) {
      if (p instanceof Uint8Array) {
        writeAll(fd, p);
        continue;
      }
      const src = deferredSource(p.tensor);
      if (src) {
        chunk ??= new Uint8Array(COPY_CHUNK);
        copyRange(sources.open(src), src.path, src.offset, src.length, fd, chunk, 'model file');
      } else writeAll(fd, checkedBytes(p.tensor, p.length));
    }
    fsyncSync(fd);
    closeSync(fd);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    sources.close();
  }
  renameSync(tmp, dest);
}

/**
 * Writes `model` to `outPath` atomically (temp files + rename). Tensor bytes that live in a file
 * (external data, or the source of a lazily loaded model) are copied from it in small chunks,
 * never read whole; deferred tensors (e.g. merged weights of a streaming merge) are computed one
 * at a time as they are written; in-memory tensors are written from memory. With external data
 * the tensors go into `<outPath>_data` one at a time. Peak memory is independent of model size.
 */
export function saveModel(model: OnnxModel, outPath: string, options: SaveOptions = {}): SavedData | undefined {
  const graph = graphOf(model);
  const inits = allInitializers(graph);
  if (options.shareDataWith) {
    saveSharingData(model, inits, outPath, options.shareDataWith);
    return options.shareDataWith;
  }
  const hadExternal = inits.some(isExternal);
  const total = inits.reduce((s, t) => s + tensorByteLength(t), 0);
  const external = options.externalData ?? (hadExternal || total > PROTOBUF_LIMIT - 64 * 2 ** 20);
  if (!external) {
    if (hadExternal) internalizeAll(inits, model.baseDir);
    materializeNested(graph);
    writePartsAtomic(outPath, encodeModelParts(model.proto));
    return undefined;
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
  const lazySources = new SourceFiles();
  const chunk = new Uint8Array(COPY_CHUNK);
  const saved: SavedData = { dataName, dir: dirname(resolve(outPath)), refs: new WeakMap() };
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
      } else if (deferredSource(t)) {
        const src = deferredSource(t)!;
        copyRange(lazySources.open(src), src.path, src.offset, src.length, fd, chunk, 'model file');
        written = src.length;
      } else {
        const bytes = tensorBytes(t, model.baseDir);
        writeAll(fd, bytes);
        written = bytes.byteLength;
      }
      swapToExternal(t, dataName, offset, written, restore);
      saved.refs.set(t, { offset, length: written });
      offset += written;
    }
    fsyncSync(fd);
    closeSync(fd);
    const encoded = encodeModel(model.proto);
    renameSync(dataTmp, dataPath);
    writeFileAtomic(outPath, encoded);
    return saved;
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
    lazySources.close();
    restoreTensors(restore);
  }
}

/** Points `t` at `length` bytes at `offset` of `location`, remembering its fields in `restore`. */
function swapToExternal(t: TensorProto, location: string, offset: number, length: number, restore: Array<[TensorProto, TensorProto]>): void {
  restore.push([t, create(TensorProtoSchema, { ...t })]);
  t.rawData = new Uint8Array(0);
  t.floatData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.doubleData = [];
  t.uint64Data = [];
  t.dataLocation = DataLocation.EXTERNAL;
  t.externalData = [
    create(StringStringEntryProtoSchema, { key: 'location', value: location }),
    create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
    create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
  ];
}

function restoreTensors(restore: Array<[TensorProto, TensorProto]>): void {
  for (const [t, saved] of restore) {
    // proto2 fields set during the swap (data_location) must become unset again, not just reassigned.
    for (const k of Object.keys(t)) if (!Object.hasOwn(saved, k)) Reflect.deleteProperty(t, k);
    Object.assign(t, saved);
  }
}

/** `saveModel` with `shareDataWith`: references into an existing data file, the rest inline. */
function saveSharingData(model: OnnxModel, inits: TensorProto[], outPath: string, shared: SavedData): void {
  if (dirname(resolve(outPath)) !== shared.dir) {
    throw new PeanutError('E_GRAPH', `shareDataWith: ${outPath} must be written beside ${join(shared.dir, shared.dataName)}`);
  }
  const restore: Array<[TensorProto, TensorProto]> = [];
  try {
    for (const t of inits) {
      const ref = shared.refs.get(t);
      if (ref) swapToExternal(t, shared.dataName, ref.offset, ref.length, restore);
      else if (isExternal(t)) {
        // A tensor the shared file does not hold is stored inline (deferred tensors are
        // streamed into the file by the encoder as they are).
        restore.push([t, create(TensorProtoSchema, { ...t })]);
        const bytes = tensorBytes(t, model.baseDir);
        t.externalData = [];
        Reflect.deleteProperty(t, 'dataLocation');
        t.rawData = bytes as Uint8Array<ArrayBuffer>;
      }
    }
    materializeNested(graphOf(model));
    writePartsAtomic(outPath, encodeModelParts(model.proto));
  } finally {
    restoreTensors(restore);
  }
}

/**
 * Bytes copied per read/write when streaming tensors from a source file. Small enough to stay in
 * the CPU cache between the read and the write: copying a 438 MB model through 256 KiB took
 * 0.2–0.3 s, through 8 MiB 1.7–2.5 s (measured on a 2-core VM).
 */
const COPY_CHUNK = 256 * 2 ** 10;

function openSource(path: string): number {
  try {
    return openSync(path, 'r');
  } catch {
    throw new PeanutError('E_FILE_NOT_FOUND', `external data file '${path}' not found (it must sit beside the .onnx file)`);
  }
}

/** Copies `length` bytes at `offset` of `src` to the current position of `dst`, chunk by chunk. */
function copyRange(src: number, srcPath: string, offset: number, length: number, dst: number, chunk: Uint8Array, what = 'external data file'): void {
  let done = 0;
  while (done < length) {
    const want = Math.min(chunk.byteLength, length - done);
    let got = 0;
    while (got < want) {
      const n = readSync(src, chunk, got, want - got, offset + done + got);
      if (n === 0) throw new PeanutError('E_NOT_ONNX', `${what} '${srcPath}' is truncated: need bytes ${offset}..${offset + length}`);
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

/**
 * A copy of a model whose graph lists (nodes, initializers, inputs, outputs, value infos) and
 * metadata can be edited without touching the original. Nodes and tensors are shared, so tensor
 * bytes (inline, lazily loaded or external) are not copied.
 */
export function editableCopy(proto: ModelProto): ModelProto {
  const g = proto.graph;
  if (!g) throw new PeanutError('E_NOT_ONNX', 'model has no graph');
  return create(ModelProtoSchema, {
    ...proto,
    metadataProps: [...proto.metadataProps],
    graph: create(GraphProtoSchema, {
      ...g,
      node: [...g.node],
      initializer: [...g.initializer],
      input: [...g.input],
      output: [...g.output],
      valueInfo: [...g.valueInfo],
    }),
  });
}
