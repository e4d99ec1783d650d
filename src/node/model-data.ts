/**
 * The external data files of models on disk: which files a model reads its tensors from, the
 * name a save gives a new data file (`<file>_data`, or `<file>_data.<tag>` when that is taken,
 * so no existing file is written over), and which data files a save replaces and may remove
 * once the new model is in place (src/node/model-files.ts writes the pair in that order).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PeanutError } from '../errors.ts';
import { modelTensors } from '../onnx/check-tensors.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { deferredSource, externalRef, isExternal } from '../onnx/tensor.ts';
import { canonical, removeFile } from './atomic.ts';
import { externalDataPath } from './files.ts';

/**
 * The external data files a model references, as session options want them: `path` is the
 * location written in the model, `data` the file on disk (`<baseDir>/<location>`).
 */
export function externalDataFiles(model: OnnxModel): Array<{ path: string; data: string }> {
  const locs = new Set<string>();
  for (const t of modelTensors(model.proto)) if (isExternal(t)) locs.add(externalRef(t).location);
  return [...locs].map((loc) => ({ path: loc, data: externalDataPath(model.baseDir, loc) }));
}

/** The external data files of a model (canonical paths). */
function dataFiles(model: OnnxModel): Set<string> {
  const files = new Set<string>();
  for (const t of modelTensors(model.proto)) if (isExternal(t)) files.add(canonical(externalDataPath(model.baseDir, externalRef(t).location)));
  return files;
}

/** Every file a model's tensors are read from: its own file, its external data, the sources of lazily loaded tensors. */
export function sourceFiles(model: OnnxModel): Set<string> {
  const files = dataFiles(model);
  if (model.path) files.add(canonical(model.path));
  for (const t of modelTensors(model.proto)) {
    const src = deferredSource(t);
    if (src) files.add(canonical(src.path));
  }
  return files;
}

/**
 * Refuses to save a model over one of its external data files: the new file would replace data
 * the input model still names (saving over the model's own file is fine: every byte is copied
 * into a temp file before it replaces the original).
 *
 * @throws PeanutError E_OUTPUT_EXISTS
 */
export function assertNotModelSource(model: OnnxModel, outPath: string): void {
  if (dataFiles(model).has(canonical(outPath))) {
    throw new PeanutError('E_OUTPUT_EXISTS', `output '${outPath}' is an external data file of the input model; choose another output path (inputs are never overwritten)`);
  }
}

/**
 * The data files this save may name: `<file>_data`, or `<file>_data.<tag>` when that name is
 * taken, so a model is never written over its own (or anyone's) existing data file.
 */
function dataFileFamily(outPath: string): RegExp {
  const base = basename(outPath).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${base}_data(\\.[0-9a-f]{8})?$`);
}

export function freshDataName(outPath: string): string {
  const dir = dirname(outPath);
  const plain = `${basename(outPath)}_data`;
  if (!existsSync(join(dir, plain))) return plain;
  for (;;) {
    const name = `${plain}.${randomBytes(4).toString('hex')}`;
    if (!existsSync(join(dir, name))) return name;
  }
}

/**
 * The data files of the model at `outPath` (the one a save is about to replace) that this
 * project's saves name (`<file>_data`, `<file>_data.<tag>`): those the new model no longer uses
 * are removed once it is in place. Files of any other name, or that `keep` holds, are never
 * touched; no old model (none there, or unreadable) leaves everything as it is.
 */
export function replacedDataFiles(old: OnnxModel | undefined, outPath: string, keep: ReadonlySet<string>): string[] {
  if (!old) return [];
  const family = dataFileFamily(outPath);
  const out: string[] = [];
  for (const t of modelTensors(old.proto)) {
    if (!isExternal(t)) continue;
    const loc = externalRef(t).location;
    if (!family.test(loc)) continue;
    const path = canonical(join(old.baseDir, loc));
    if (!keep.has(path) && !out.includes(path)) out.push(path);
  }
  return out;
}

/**
 * The tagged data files of `outPath` (`<file>_data.<tag>`, a name only these saves give) beside
 * it, but those in `keep`: after a save they are the replaced pair's or a killed save's.
 */
export function taggedDataFiles(outPath: string, keep: ReadonlySet<string>): string[] {
  const family = dataFileFamily(outPath);
  const plain = `${basename(outPath)}_data`;
  let names: string[];
  try {
    names = readdirSync(dirname(outPath));
  } catch {
    return [];
  }
  return names.filter((n) => n !== plain && family.test(n)).map((n) => canonical(join(dirname(outPath), n))).filter((p) => !keep.has(p));
}

/** Removes data files of replaced models (see `SaveOptions.replaced`). */
export function removeReplaced(paths: readonly string[]): void {
  for (const p of paths) removeFile(p);
}
