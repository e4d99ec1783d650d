/**
 * Atomic file output: everything is written to a temp file beside the destination and renamed
 * into place, so an interrupted run never leaves a half-written model or checkpoint.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync, existsSync, realpathSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';

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

/** Refuse to write over one of the command's inputs. */
export function assertNotInput(output: string, ...inputs: (string | undefined)[]): void {
  const out = canonical(output);
  for (const input of inputs) {
    if (input !== undefined && canonical(input) === out) {
      throw new PeanutError('E_OUTPUT_EXISTS', `output '${output}' is the same file as the input; choose another -o path (inputs are never overwritten)`);
    }
  }
}

function canonical(p: string): string {
  const abs = resolve(p);
  return existsSync(abs) ? realpathSync(abs) : abs;
}

/** Writes `chunks` in order to `dest` atomically. */
export function writeFileAtomic(dest: string, ...chunks: Uint8Array[]): void {
  const tmp = tempPathFor(dest);
  const fd = openSync(tmp, 'w');
  try {
    for (const chunk of chunks) writeAll(fd, chunk);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, dest);
}

/** `writeSync` may write less than asked for large buffers; loop until done. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) {
    off += writeSync(fd, bytes, off, bytes.byteLength - off);
  }
}
