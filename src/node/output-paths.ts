/** Checks on an output path, made before any work so a bad path fails fast and nothing is written. */
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join, parse, resolve, sep } from 'node:path';
import { PeanutError } from '../errors.ts';
import { assertNotInput, fileError, tempPathFor } from './atomic.ts';

/**
 * Refuses an output file that is one of the inputs, is a directory, or lies in a directory that
 * does not exist.
 *
 * @throws PeanutError E_OUTPUT_EXISTS / E_FILE_NOT_FOUND
 */
export function checkOutput(output: string, ...inputs: (string | undefined)[]): void {
  assertNotInput(output, ...inputs);
  const abs = resolve(output);
  if (existsSync(abs) && statSync(abs).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `output '${output}' is a directory; give a file path`);
  const dir = dirname(abs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PeanutError('E_FILE_NOT_FOUND', `output directory '${dirname(output)}' does not exist; create it first`);
  probeWritable(dir, output);
}

/**
 * Creates and removes a temp file in `dir`, so an output that cannot be written (a read-only
 * folder, a file system that refuses new files) fails before any work rather than after it.
 *
 * @throws PeanutError E_IO naming `output`
 */
function probeWritable(dir: string, output: string): void {
  const probe = tempPathFor(join(dir, 'peanut-onnx-probe'));
  try {
    closeSync(openSync(probe, 'wx'));
  } catch (err) {
    throw fileError(err, 'write', output);
  }
  rmSync(probe, { force: true });
}

/**
 * Checks, without creating anything, that the folder `dir` exists or can be created: the nearest
 * part of the path that exists is a folder in which files can be made.
 *
 * @throws PeanutError E_OUTPUT_EXISTS (a file in the way) or E_IO
 */
export function checkCanCreateDir(dir: string): void {
  let at = resolve(dir);
  while (!existsSync(at)) {
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (!statSync(at).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `cannot create the folder ${dir}: ${at} is a file`);
  try {
    probeWritable(at, dir);
  } catch (err) {
    if (err instanceof PeanutError) throw new PeanutError(err.code, err.message.replace(`cannot write ${dir}`, `cannot create the folder ${dir}`));
    throw err;
  }
}

/**
 * Creates the directory `dir` and any missing parents, one level at a time: a part of the path
 * that is a file, a folder that cannot be written, or a file system that refuses new folders
 * (`/proc`, where Node's own recursive mkdir loops forever) fails at once with one line.
 *
 * @throws PeanutError E_OUTPUT_EXISTS (a file in the way) or E_IO
 */
export function ensureDir(dir: string): void {
  const abs = resolve(dir);
  const { root } = parse(abs);
  const parts = abs.slice(root.length).split(sep).filter(Boolean);
  let at = root;
  for (const part of parts) {
    at = at === root ? `${root}${part}` : `${at}${sep}${part}`;
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(at);
    } catch {
      st = undefined;
    }
    if (st) {
      if (!st.isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `cannot create the folder ${dir}: ${at} is a file`);
      continue;
    }
    try {
      mkdirSync(at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(at).isDirectory()) continue;
      throw fileError(err, 'create the folder', dir);
    }
  }
}
