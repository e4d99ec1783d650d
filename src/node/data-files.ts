/** Data and tokenizer files: the Node side of src/data/ (which works on contents, not paths). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PeanutError } from '../errors.ts';
import { exampleSetFromJsonl, exampleSetFromSafetensors, type ExampleSet } from '../data/example-set.ts';
import { tokenizerFromJson, type TextTokenizer } from '../data/tokenize.ts';

/** Opens a data file (`.jsonl`/`.json` or `.safetensors`). */
export function openExampleSet(path: string, opts: { tokenizer?: TextTokenizer } = {}): ExampleSet {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `data file not found: ${path}`);
  if (/\.safetensors$/i.test(path)) return exampleSetFromSafetensors(readFileSync(path), path);
  if (/\.jsonl?$/i.test(path)) return exampleSetFromJsonl(readFileSync(path, 'utf8'), path, opts);
  throw new PeanutError('E_DATA', `unsupported data file '${path}': use .jsonl (one JSON example a line) or .safetensors (one tensor per field)`);
}

function readJson(path: string, what: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new PeanutError('E_DATA', `${what} ${path} is not valid JSON (${(err as Error).message})`);
  }
}

/** Loads `tokenizer.json` (and `tokenizer_config.json` beside it, if any). */
export function loadTokenizer(path: string): TextTokenizer {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `tokenizer file not found: ${path} (pass the model's tokenizer.json with --tokenizer)`);
  const json = readJson(path, 'tokenizer');
  const configPath = join(dirname(path), 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath, 'tokenizer config') : {};
  return tokenizerFromJson(json, config, path);
}
