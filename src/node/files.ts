/**
 * The ONNX layer's file reader on Node's file system (see src/onnx/files.ts), and the one place
 * that decides which files a model may name: an external-data `location` must stay inside the
 * model's folder (no absolute path, no `..` leading out, no symbolic link pointing out), the file
 * must be a regular file, and every byte range must lie inside it. ONNX Runtime refuses such
 * locations too; checking them here means no command ever reads (or copies into its output) a file
 * the model has no business naming.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PeanutError } from '../errors.ts';
import { setFileReader, type FileIdentity, type FileReader, type SourceRange } from '../onnx/files.ts';

export function fileIdentity(st: { dev: number; ino: number; size: number; mtimeMs: number }): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

const inside = (root: string, p: string) => {
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
};

/**
 * The file an external-data `location` of a model in `baseDir` names, checked to stay inside
 * that folder (after following symbolic links) and to be a regular file.
 *
 * @throws PeanutError E_NOT_ONNX for a location leading out of the folder; E_FILE_NOT_FOUND when absent.
 */
export function externalDataPath(baseDir: string, location: string): string {
  const refuse = (why: string) =>
    new PeanutError('E_NOT_ONNX', `external data location '${location}' ${why}; a model may only name regular files inside its own folder (${baseDir}), as ONNX Runtime also requires: put the data file there and name it by a relative path`);
  if (location === '' || location.includes('\0')) throw refuse('is not a file name');
  if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) throw refuse('is an absolute path');
  const root = resolve(baseDir);
  const path = resolve(root, location);
  if (!inside(root, path)) throw refuse('leads out of the model folder');
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw new PeanutError('E_FILE_NOT_FOUND', `external data file '${join(baseDir, location)}' not found (it must sit beside the .onnx file)`);
  }
  if (!inside(realpathSync(root), real)) throw refuse('is a link to a file outside the model folder');
  if (!statSync(real).isFile()) throw refuse('is not a regular file');
  return path;
}

/** Checks `offset`/`length` of an external tensor against its file's size before any read. */
export function checkRange(path: string, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new PeanutError('E_NOT_ONNX', `external data of '${path}': offset ${offset} / length ${length} are not valid byte counts; the model is corrupt`);
  }
  if (offset + length > size) {
    throw new PeanutError('E_NOT_ONNX', `external data file '${path}' is truncated: need bytes ${offset}..${offset + length}, the file has ${size}`);
  }
}

/** Reads exactly `out.byteLength` bytes at `offset` of `fd`; `short` explains a file that ends early. */
export function readFully(fd: number, out: Uint8Array, offset: number, short: () => PeanutError): void {
  let done = 0;
  while (done < out.byteLength) {
    const n = readSync(fd, out, done, out.byteLength - done, offset + done);
    if (n === 0) throw short();
    done += n;
  }
}

/**
 * Opens a lazily loaded tensor's file for reading, checking that it is still the file the range
 * was taken from. The caller closes the descriptor.
 */
export function openSourceRange(src: SourceRange): number {
  let fd: number;
  try {
    fd = openSync(src.path, 'r');
  } catch {
    throw new PeanutError('E_FILE_NOT_FOUND', `model file '${src.path}' is gone; its tensors are read from it on demand, so it must stay until the model is saved`);
  }
  const now = fileIdentity(fstatSync(fd));
  const then = src.identity;
  if (now.dev !== then.dev || now.ino !== then.ino || now.size !== then.size || now.mtimeMs !== then.mtimeMs) {
    closeSync(fd);
    throw new PeanutError('E_SOURCE_CHANGED', `model file '${src.path}' changed since it was loaded; its tensors are read from it on demand, so load it again`);
  }
  return fd;
}

export const sourceShorter = (src: SourceRange) => () => new PeanutError('E_SOURCE_CHANGED', `model file '${src.path}' is shorter than when it was loaded`);

/** Opens an external data file (checked by `externalDataPath`) and returns its descriptor and size. */
export function openExternal(baseDir: string, location: string): { fd: number; path: string; size: number } {
  const path = externalDataPath(baseDir, location);
  const fd = openSync(path, 'r');
  return { fd, path, size: fstatSync(fd).size };
}

export const nodeFileReader: FileReader = {
  readExternal(baseDir, location, offset, length) {
    const { fd, path, size } = openExternal(baseDir, location);
    try {
      checkRange(path, offset, length, size);
      const out = new Uint8Array(length);
      readFully(fd, out, offset, () => new PeanutError('E_NOT_ONNX', `external data file '${path}' is truncated: need bytes ${offset}..${offset + length}`));
      return out;
    } finally {
      closeSync(fd);
    }
  },
  readSource(src, out) {
    const fd = openSourceRange(src);
    try {
      readFully(fd, out, src.offset, sourceShorter(src));
    } finally {
      closeSync(fd);
    }
  },
};

/** Makes the ONNX layer read files through Node's file system (idempotent). */
export function installNodeFiles(): void {
  setFileReader(nodeFileReader);
}

installNodeFiles();
