/** Checks on an output path, made before any work so a bad path fails fast and nothing is written. */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { assertNotInput } from './atomic.ts';

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
