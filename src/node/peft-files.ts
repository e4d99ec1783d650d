/** PEFT adapter directories and the files an adapter is read from (interop/peft on disk). */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PeanutError } from '../errors.ts';
import { adapterFromModel, adapterFromTensors, importPeft, parsePeftAdapter, peftFiles, summaryOfModel, type AdapterSource, type ExportPeftOptions, type ImportPeftResult, type PeftAdapter } from '../interop/peft/adapter.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../interop/peft/config.ts';
import { assertNotInput, writeFileAtomic } from './atomic.ts';
import { loadModel, saveModel } from './model-files.ts';
import { nodeRuntime } from './onnxruntime.ts';
import { checkModelLoads } from '../runtime/load-check.ts';
import { checkCanCreateDir, checkOutput, ensureDir } from './output-paths.ts';
import { resolveCheckpoint } from './run-dir.ts';
import { readSafetensors } from './safetensors-files.ts';

/**
 * Reads an adapter from an adapted model, a tweaker or training checkpoint file, a run
 * directory or an artifact directory.
 *
 * @throws PeanutError `E_FILE_NOT_FOUND`, `E_NOT_ADAPTED`, `E_BAD_SAFETENSORS`, `E_BAD_CONFIG`
 */
export function readAdapterSource(path: string, opts: { model?: string } = {}): AdapterSource {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `not found: ${path} (pass an adapted .onnx, a checkpoint .safetensors or a run directory)`);
  if (!statSync(path).isDirectory() && !path.endsWith('.safetensors')) return adapterFromModel(loadModel(path), path);
  const file = resolveCheckpoint(path);
  return adapterFromTensors(readSafetensors(file), file, opts.model ? summaryOfModel(loadModel(opts.model)) : undefined);
}

export interface ExportPeftResult {
  warnings: string[];
  configPath: string;
  weightsPath: string;
  config: Record<string, unknown>;
  /** Keys written, with PEFT's prefix. */
  keys: string[];
  source: AdapterSource;
}

/**
 * Writes a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`), each file
 * atomically; the directory is created if needed.
 *
 * @param sourcePath - adapted model, checkpoint/tweaker file, run or artifact directory
 * @param outDir - the adapter directory
 */
export function exportPeft(sourcePath: string, outDir: string, opts: ExportPeftOptions = {}): ExportPeftResult {
  for (const f of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]) assertNotInput(join(outDir, f), sourcePath, opts.model);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${outDir} is a file; a PEFT adapter is a directory`);
  checkCanCreateDir(outDir);
  const source = readAdapterSource(sourcePath, opts);
  const files = peftFiles(source, opts);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${outDir} is a file; a PEFT adapter is a directory`);
  ensureDir(outDir);
  const weightsPath = join(outDir, ADAPTER_WEIGHTS_FILE);
  const configPath = join(outDir, ADAPTER_CONFIG_FILE);
  writeFileAtomic(weightsPath, ...files.weights);
  writeFileAtomic(configPath, new TextEncoder().encode(`${JSON.stringify(files.config, null, 2)}\n`));
  return { warnings: files.warnings, configPath, weightsPath, config: files.config, keys: files.keys, source };
}

/**
 * Reads `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors`.
 *
 * @throws PeanutError `E_FILE_NOT_FOUND` naming the missing files, `E_BAD_CONFIG` for an
 *   unsupported configuration, `E_BAD_SAFETENSORS` for an unreadable weights file
 */
export function readPeftAdapter(dir: string): PeftAdapter {
  if (!existsSync(dir)) throw new PeanutError('E_FILE_NOT_FOUND', `adapter directory not found: ${dir}`);
  if (!statSync(dir).isDirectory()) throw new PeanutError('E_FILE_NOT_FOUND', `${dir} is not a directory; pass the PEFT adapter directory holding ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}`);
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const missing = [configPath, weightsPath].filter((p) => !existsSync(p));
  if (missing.length) {
    const pickle = existsSync(join(dir, 'adapter_model.bin')) ? ' (adapter_model.bin is a pickle file; re-save the adapter with safe_serialization=True)' : '';
    throw new PeanutError('E_FILE_NOT_FOUND', `PEFT adapter incomplete: missing ${missing.join(', ')}${pickle}`);
  }
  return parsePeftAdapter(readFileSync(configPath, 'utf8'), readFileSync(weightsPath), dir);
}

/**
 * `peanut-onnx import-peft`: injects the PEFT adapter in `adapterDir` into the model at
 * `modelPath` and writes the adapted model to `outPath`, every path checked before any work and
 * the result checked to load in ONNX Runtime before it is written.
 */
export async function importPeftFile(adapterDir: string, modelPath: string, outPath: string): Promise<ImportPeftResult> {
  checkOutput(outPath, modelPath, join(adapterDir, ADAPTER_CONFIG_FILE), join(adapterDir, ADAPTER_WEIGHTS_FILE));
  const adapter = readPeftAdapter(adapterDir);
  const r = importPeft(loadModel(modelPath), adapter);
  await checkModelLoads(nodeRuntime, r.model, 'the adapted model');
  saveModel(r.model, outPath);
  return r;
}
