/**
 * Loading and saving ModelProto files, including the external-data layout Hugging Face uses past
 * 2 GB (`model.onnx` + `model.onnx_data`). Small files are read whole and decoded with tensor
 * bytes as views into the file buffer. Large inline files are loaded lazily: only a skeleton
 * without the large raw_data payloads is read, and those tensors read their bytes from the file
 * on demand (see `loadModel`). External tensors stay on disk until someone asks for their bytes.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { create, DataLocation, StringStringEntryProtoSchema, TensorProtoSchema, type ModelProto, type TensorProto } from '../onnx/proto.ts';
import { deferredLength, deferredSource, deferTensorToFile, externalRef, isExternal, numElements, tensorBytes, tensorDims, type SourceRange } from '../onnx/tensor.ts';
import { dtypeSize } from '../onnx/dtype.ts';
import { encodeModelParts, type ModelPart } from '../onnx/encode-chunks.ts';
import { allInitializers, checkedBytes, decodeModel, encodeModel, graphOf, materializeNested, type OnnxModel } from '../onnx/model.ts';
import { checkModelTensors, modelTensors } from '../onnx/check-tensors.ts';
import { canonical, fileError, removeDeadTemps, renameAtomic, tempPathFor, withFileErrors, writeFileAtomic } from './atomic.ts';
import { FileSink } from './sink.ts';
import { checkRange, externalDataPath, fileIdentity, openExternal, openSourceRange } from './files.ts';
import { readSkeleton } from './lazy-load.ts';
import { assertNotModelSource, freshDataName, removeReplaced, replacedDataFiles, sourceFiles, taggedDataFiles } from './model-data.ts';

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
  const model = (proto: ModelProto): OnnxModel => {
    const m = { proto, baseDir: dirname(abs), path: abs };
    checkExternalData(m, path);
    return m;
  };
  const fd = withFileErrors('read', path, () => openSync(path, 'r'));
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new PeanutError('E_NOT_ONNX', `${path} is not a regular file, so it is not an ONNX model`);
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

/**
 * Checks, before any work, that every external tensor's file is one the model may name (inside
 * its folder, a regular file: `externalDataPath`) and that its byte range lies inside that file,
 * so no later read can leave the folder or run past a file's end.
 */
function checkExternalData(model: OnnxModel, what: string): void {
  const files = new Map<string, { path: string; size: number }>();
  for (const t of modelTensors(model.proto)) {
    if (!isExternal(t)) continue;
    const ref = externalRef(t);
    try {
      let file = files.get(ref.location);
      if (!file) {
        const path = externalDataPath(model.baseDir, ref.location);
        file = { path, size: statSync(path).size };
        files.set(ref.location, file);
      }
      checkRange(file.path, ref.offset, ref.length, file.size);
    } catch (err) {
      if (err instanceof PeanutError) throw new PeanutError(err.code, `${what}: tensor '${t.name}': ${err.message}`);
      throw err;
    }
  }
}

/** The lazy path of `loadModel`; `undefined` when the file is not laid out as the scan expects. */
function loadLazily(fd: number, abs: string, identity: SourceRange['identity'], deferBytes: number, what: string): ModelProto | undefined {
  const skeleton = readSkeleton(fd, identity.size, Math.max(1, deferBytes));
  if (!skeleton) return undefined;
  const proto = decodeModel(skeleton.bytes, what, false);
  const inits = proto.graph!.initializer;
  if (inits.length !== skeleton.initializers) return undefined;
  for (const i of skeleton.ranges.keys()) if (inits[i]!.rawData.byteLength !== 0) return undefined;
  for (const [i, range] of skeleton.ranges) deferTensorToFile(inits[i]!, { path: abs, offset: range.offset, length: range.length, identity });
  checkModelTensors(proto, what);
  return proto;
}

export interface SaveOptions {
  /**
   * Store large tensors in an external data file beside the model (`<file>_data`, see
   * `saveModel`). Default: when the source model used external data, or when the model would
   * exceed protobuf's 2 GB limit.
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
  /**
   * Where to put the data files of the model this save replaces, instead of removing them once
   * the new model is in place: for a caller that writes several models sharing one data file and
   * removes the old files after the last one (`removeReplaced`).
   */
  replaced?: string[];
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

/** The model a save to `outPath` replaces, if one is there and readable (its data files are then replaced too). */
function previousModel(outPath: string): OnnxModel | undefined {
  if (!existsSync(outPath)) return undefined;
  try {
    return loadModel(outPath);
  } catch {
    return undefined;
  }
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
  const sink = new FileSink(withFileErrors('write', dest, () => openSync(tmp, 'w')));
  const sources = new SourceFiles();
  try {
    for (const p of parts) {
      if (p instanceof Uint8Array) {
        sink.add(p);
        continue;
      }
      const src = deferredSource(p.tensor);
      if (src) sink.copy(sources.open(src), src.path, src.offset, src.length, 'model file');
      else sink.add(checkedBytes(p.tensor, p.length));
    }
    sink.finish();
  } catch (err) {
    sink.abort();
    rmSync(tmp, { force: true });
    throw fileError(err, 'write', dest);
  } finally {
    sources.close();
  }
  renameAtomic(tmp, dest);
}

/**
 * Writes `model` to `outPath`. Tensor bytes that live in a file (external data, or the source of
 * a lazily loaded model) are copied from it in small chunks, never read whole; deferred tensors
 * (e.g. merged weights of a streaming merge) are computed one at a time as they are written;
 * in-memory tensors are written from memory. Peak memory is independent of model size.
 *
 * With external data the tensors go into `<outPath>_data` (or `<outPath>_data.<tag>` when that
 * name is taken, e.g. by the data of the model being replaced), and the pair is replaced
 * atomically: the data file is written and renamed into place first, the model, which names it,
 * last; only then are the data files of the model it replaced removed. A save killed at any
 * point leaves either the old pair or the new one, never a model beside data it was not written
 * with. Temp files a killed save left beside `outPath` are removed by the next save there.
 *
 * @throws PeanutError E_OUTPUT_EXISTS when `outPath` is a file the model reads from; E_IO when
 *   the folder cannot be written
 */
export function saveModel(model: OnnxModel, outPath: string, options: SaveOptions = {}): SavedData | undefined {
  const out = resolve(outPath);
  assertNotModelSource(model, outPath);
  const graph = graphOf(model);
  const inits = allInitializers(graph);
  removeDeadTemps(dirname(out), basename(out));
  const keep = sourceFiles(model);
  const replaced = replacedDataFiles(previousModel(out), out, keep);
  const finish = (newData?: string) => {
    const stale = [...new Set([...replaced, ...taggedDataFiles(out, keep)])].filter((p) => p !== newData);
    if (options.replaced) options.replaced.push(...stale);
    else removeReplaced(stale);
  };
  if (options.shareDataWith) {
    saveSharingData(model, inits, out, options.shareDataWith);
    finish(canonical(join(options.shareDataWith.dir, options.shareDataWith.dataName)));
    return options.shareDataWith;
  }
  const hadExternal = inits.some(isExternal);
  const total = inits.reduce((s, t) => s + tensorByteLength(t), 0);
  const external = options.externalData ?? (hadExternal || total > PROTOBUF_LIMIT - 64 * 2 ** 20);
  if (!external) {
    if (hadExternal) internalizeAll(inits, model.baseDir);
    materializeNested(graph);
    writePartsAtomic(out, encodeModelParts(model.proto));
    finish();
    return undefined;
  }
  const threshold = options.sizeThreshold ?? 1024;
  const dataName = freshDataName(out);
  const dataPath = join(dirname(out), dataName);
  const dataTmp = tempPathFor(dataPath);
  const sink = new FileSink(withFileErrors('write', dataPath, () => openSync(dataTmp, 'w')));
  // Tensors are swapped for external references only while encoding, then restored, so the
  // in-memory model is unchanged by a save.
  const restore: Array<[TensorProto, TensorProto]> = [];
  // Source data files stay open for the whole save (the sink's copies may still be running until
  // it finishes); external tensors are copied in chunks, so no tensor (let alone the model) is
  // ever held in memory whole.
  const sources = new Map<string, { fd: number; path: string; size: number }>();
  const lazySources = new SourceFiles();
  const saved: SavedData = { dataName, dir: dirname(out), refs: new WeakMap() };
  let dataInPlace = false;
  try {
    let offset = 0;
    for (const t of inits) {
      const len = tensorByteLength(t);
      if (len < threshold && !isExternal(t)) continue;
      let written: number;
      if (isExternal(t)) {
        const ref = externalRef(t);
        let src = sources.get(ref.location);
        if (src === undefined) {
          src = openExternal(model.baseDir, ref.location);
          sources.set(ref.location, src);
        }
        checkRange(src.path, ref.offset, ref.length, src.size);
        sink.copy(src.fd, src.path, ref.offset, ref.length, 'external data file');
        written = ref.length;
      } else if (deferredSource(t)) {
        const src = deferredSource(t)!;
        sink.copy(lazySources.open(src), src.path, src.offset, src.length, 'model file');
        written = src.length;
      } else {
        const bytes = tensorBytes(t, model.baseDir);
        sink.add(bytes);
        written = bytes.byteLength;
      }
      swapToExternal(t, dataName, offset, written, restore);
      saved.refs.set(t, { offset, length: written });
      offset += written;
    }
    sink.finish();
    const encoded = encodeModel(model.proto);
    renameAtomic(dataTmp, dataPath);
    dataInPlace = true;
    writeFileAtomic(out, encoded);
  } catch (err) {
    sink.abort();
    rmSync(dataTmp, { force: true });
    // The new data file is nobody's until the model naming it is in place.
    if (dataInPlace) rmSync(dataPath, { force: true });
    throw fileError(err, 'write', dataPath);
  } finally {
    for (const src of sources.values()) closeSync(src.fd);
    lazySources.close();
    restoreTensors(restore);
  }
  finish(canonical(dataPath));
  return saved;
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

function internalizeAll(inits: TensorProto[], baseDir: string): void {
  for (const t of inits) {
    if (!isExternal(t)) continue;
    const bytes = tensorBytes(t, baseDir);
    t.rawData = bytes as Uint8Array<ArrayBuffer>;
    t.externalData = [];
    t.dataLocation = DataLocation.DEFAULT;
  }
}

