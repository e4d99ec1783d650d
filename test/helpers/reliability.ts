/**
 * Helpers for the reliability tests: a fingerprint of a whole folder (to prove a refused
 * command wrote nothing and left every input byte-identical), the one-line-error check, and
 * models with external data whose fields a test can forge.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { create, fromBinary, ModelProtoSchema, StringStringEntryProtoSchema, toBinary, type ModelProto, type TensorProto } from '../../src/onnx/proto.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import type { CliResult } from './cli.ts';
import { runCli } from './cli.ts';

/** Every entry under `root` (relative path → content hash, `dir`, or `link → target`), sorted. */
export function treeState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const key = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path);
      if (st.isSymbolicLink()) out[key] = `link → ${readlinkSync(path)}`;
      else if (st.isDirectory()) {
        out[key] = 'dir';
        walk(path, key);
      } else if (st.isFile()) out[key] = createHash('sha256').update(readFileSync(path)).digest('hex');
      else out[key] = 'special';
    }
  };
  walk(root, '');
  return out;
}

/**
 * The result is a refusal: exit `code`, exactly one line on stderr, `error: …` matching
 * `pattern`, no stack. With `afterProgress`, progress lines of a run that had started may come
 * first; the error is still one line, and the last.
 */
export function expectOneLine(r: CliResult, pattern: RegExp, code = 1, afterProgress = false): void {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  if (afterProgress) expect(lines.filter((l) => /error|^\s+at /i.test(l)), r.stderr).toEqual([lines.at(-1)]);
  else expect(lines, r.stderr).toHaveLength(1);
  expect(lines.at(-1)).toMatch(/^error: /);
  expect(lines.at(-1)).toMatch(pattern);
}

/**
 * Runs the CLI and checks that it refused with one line matching `pattern` and left `root`
 * exactly as it was: no file written, none changed or removed.
 */
export async function expectRefused(root: string, argv: string[], pattern: RegExp, code = 1, afterProgress = false): Promise<CliResult> {
  const before = treeState(root);
  const r = await runCli(argv);
  expectOneLine(r, pattern, code, afterProgress);
  expect(treeState(root)).toEqual(before);
  return r;
}

/** Reads a model file as a proto (without any of the library's checks), edits it, writes it back. */
export function editModelFile(path: string, edit: (proto: ModelProto) => void): void {
  const proto = fromBinary(ModelProtoSchema, readFileSync(path));
  edit(proto);
  writeFileSync(path, toBinary(ModelProtoSchema, proto));
}

/** Sets (or adds) an external-data entry of a tensor. */
export function setExternal(t: TensorProto, key: string, value: string): void {
  const e = t.externalData.find((x) => x.key === key);
  if (e) e.value = value;
  else t.externalData.push(create(StringStringEntryProtoSchema, { key, value }));
}

/** The model at `src` saved with every tensor of 1 KiB or more in `<out>_data`. */
export function withExternalData(src: string, out: string): void {
  saveModel(loadModel(src), out, { externalData: true });
}

/** A model's initializer by name, from a proto. */
export function initializer(proto: ModelProto, name: string): TensorProto {
  const t = proto.graph!.initializer.find((x) => x.name === name);
  if (!t) throw new Error(`no initializer '${name}'`);
  return t;
}
