/** Checks on an output path, made before any work so a bad path fails fast and nothing is written. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, parse, resolve, sep } from 'node:path';
import { PeanutError } from '../errors.ts';
import { assertNotInput, fileError } from './atomic.ts';

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
