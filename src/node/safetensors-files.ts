/** safetensors files: reading whole files and writing them atomically (the format is formats/safetensors.ts). */
import { existsSync, readFileSync } from 'node:fs';
import { PeanutError } from '../errors.ts';
import { encodeSafetensors, parseSafetensors, type SafeFile, type SafeTensor } from '../formats/safetensors.ts';
import { writeFileAtomic } from './atomic.ts';

export function readSafetensors(path: string): SafeFile {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `file not found: ${path}`);
  return parseSafetensors(readFileSync(path), path);
}

export function writeSafetensors(path: string, tensors: Map<string, SafeTensor> | Record<string, SafeTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, ...encodeSafetensors(tensors, metadata));
}
