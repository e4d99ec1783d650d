/**
 * Atomic file output: everything is written to a temp file beside the destination and renamed
 * into place, so an interrupted run never leaves a half-written model or checkpoint. Temp files
 * carry the writing process's id, so a later run can remove those a killed process left behind.
 * File-system failures (a read-only or missing folder, a full disk) become one-line errors.
 */
import { close, constants, lstatSync, openSync, readdirSync, renameSync, rmSync, existsSync, realpathSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { FileSink } from './sink.ts';

let counter = 0;

/** A temp path in the same directory (same filesystem, so `rename` is atomic). */
export function tempPathFor(dest: string): string {
  counter += 1;
  return join(dirname(dest), `.${basename(dest)}.${process.pid}.${counter}.tmp`);
}

/** The process that made a temp file named by `tempPathFor`, or undefined for any other name. */
export function tempFileOwner(name: string): number | undefined {
  const m = /^\..+\.(\d+)\.\d+\.tmp$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Whether a process with this id exists (on this machine). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files (`tempPathFor` names) in `dir` whose writing process is gone, i.e. what
 * a killed write left behind; only names starting with `.${prefix}` when a prefix is given.
 * Missing or unreadable folders are left alone.
 */
export function removeDeadTemps(dir: string, prefix = ''): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const f of names) {
    if (!f.startsWith(`.${prefix}`)) continue;
    const owner = tempFileOwner(f);
    if (owner !== undefined && owner !== process.pid && !processAlive(owner)) rmSync(join(dir, f), { force: true });
  }
}

/** Refuse to write over one of the command's inputs. */
export function assertNotInput(output: string, ...inputs: (string | undefined)[]): void {
  const out = canonical(output);
  for (const input of inputs) {
    if (input !== undefined && canonical(input) === out) {
      throw new PeanutError('E_OUTPUT_EXISTS', `output '${output}' is the same file as the input '${input}'; choose another output path (inputs are never overwritten)`);
    }
  }
}

/** A path with symbolic links resolved where it exists, so two names of one file compare equal. */
export function canonical(p: string): string {
  const abs = resolve(p);
  try {
    return existsSync(abs) ? realpathSync(abs) : join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

const WHY: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOENT: 'the folder does not exist',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EEXIST: 'it already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  EINVAL: 'the path is not valid here',
  EBUSY: 'the file is busy',
  ELOOP: 'too many symbolic links',
  EXDEV: 'it is on another file system',
};

/**
 * A file-system error of `doing` (e.g. `write`) on `path` as a one-line PeanutError (`E_IO`);
 * anything that is not a file-system error is returned unchanged.
 */
export function fileError(err: unknown, doing: string, path: string): unknown {
  if (err instanceof PeanutError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return err;
  const why = WHY[code] ?? ((err as Error).message.split('\n')[0] ?? code);
  return new PeanutError('E_IO', `cannot ${doing} ${path}: ${why} (${code}); choose an output path in a folder you can write to`);
}

/** Runs `fn`, turning a file-system error into `fileError(err, doing, path)`. */
export function withFileErrors<T>(doing: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fileError(err, doing, path);
  }
}

/** Writes `chunks` in order to `dest` atomically. */
export function writeFileAtomic(dest: string, ...chunks: Uint8Array[]): void {
  const tmp = tempPathFor(dest);
  const sink = new FileSink(withFileErrors('write', dest, () => openSync(tmp, 'w')));
  try {
    for (const chunk of chunks) sink.add(chunk);
    sink.finish();
  } catch (err) {
    sink.abort();
    rmSync(tmp, { force: true });
    throw fileError(err, 'write', dest);
  }
  renameAtomic(tmp, dest);
}

/** Renames a finished temp file onto its destination (removing the temp file when that fails). */
export function renameAtomic(tmp: string, dest: string): void {
  const release = holdForRelease(dest);
  try {
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw fileError(err, 'write', dest);
  } finally {
    release();
  }
}

/** Removes a file if it is there (`rmSync` with `force`), without waiting for a large one's pages to be freed. */
export function removeFile(path: string): void {
  const release = holdForRelease(path);
  try {
    rmSync(path, { force: true });
  } finally {
    release();
  }
}

/** Files from this size on are released in the background by `holdForRelease`. */
const RELEASE_LATER_BYTES = 16 * 2 ** 20;

/**
 * When the last name of a large file goes (a rename over it, an unlink), the kernel frees its
 * cached pages in that call: about 90 ms for a 440 MB model, on the caller's clock. Holding the
 * file open across the rename or unlink moves that work to the close, which the returned
 * function starts on libuv's thread pool, so the caller does not wait for it. Only for regular
 * files of at least `RELEASE_LATER_BYTES` (never a link, FIFO or device), and not on Windows,
 * where an open file cannot be replaced; otherwise the returned function does nothing.
 */
function holdForRelease(path: string): () => void {
  const none = () => {};
  if (process.platform === 'win32') return none;
  let fd: number;
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size < RELEASE_LATER_BYTES) return none;
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return none;
  }
  return () => close(fd, () => {});
}
