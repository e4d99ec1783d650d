/**
 * The import rules of docs/architecture.md, checked on every source file: each folder imports only
 * the folders below it, Node's built-ins and onnxruntime-node only where the table allows, the CLI
 * only the public entry, and the core bundles for a browser (esbuild, platform browser) without
 * a single `node:` import.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const SRC = join(ROOT, 'src');

/**
 * Layer of a source file (path relative to src/), and what each layer may import. The order is
 * the one docs/architecture.md draws; a layer imports only layers listed for it (and itself).
 */
const LAYER_OF: Array<[RegExp, string]> = [
  [/^(errors|version)\.ts$|^util\//, 'base'],
  [/^formats\//, 'formats'],
  [/^onnx\//, 'onnx'],
  [/^adapter\//, 'adapter'],
  [/^autodiff\//, 'autodiff'],
  [/^runtime\//, 'runtime'],
  [/^data\//, 'data'],
  [/^train\//, 'train'],
  [/^interop\//, 'interop'],
  [/^node\//, 'node'],
  [/^(index|choices|rules|web)\.ts$/, 'entry'],
  [/^cli\//, 'cli'],
];

const ALLOWED: Record<string, readonly string[]> = {
  base: ['base'],
  formats: ['base'],
  onnx: ['base'],
  adapter: ['base', 'formats', 'onnx'],
  autodiff: ['base', 'onnx'],
  runtime: ['base', 'formats', 'onnx', 'adapter'],
  data: ['base', 'formats', 'onnx'],
  train: ['base', 'formats', 'onnx', 'adapter', 'autodiff', 'runtime', 'data'],
  interop: ['base', 'formats', 'onnx', 'adapter'],
  node: ['base', 'formats', 'onnx', 'adapter', 'autodiff', 'runtime', 'data', 'train', 'interop'],
  entry: ['base', 'formats', 'onnx', 'adapter', 'autodiff', 'runtime', 'data', 'train', 'interop', 'node', 'entry'],
  cli: [],
};

/** Layers whose files may import Node's built-ins (`node:*`). */
const NODE_BUILTINS = new Set(['node', 'cli']);
/** The one file that imports onnxruntime-node. */
const ORT_NODE_FILE = 'node/onnxruntime.ts';
/** Entries that must not reach the Node layer (they run in browsers). */
const BROWSER_ENTRIES = new Set(['web.ts']);

function layerOf(rel: string): string {
  for (const [re, layer] of LAYER_OF) if (re.test(rel)) return layer;
  throw new Error(`src/${rel} belongs to no layer: add its folder to docs/architecture.md and this test`);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

const FILES = sourceFiles(SRC).map((abs) => ({ abs, rel: relative(SRC, abs).split('\\').join('/') }));

describe('import rules (docs/architecture.md)', () => {
  it('every source file belongs to a layer', () => {
    for (const f of FILES) expect(() => layerOf(f.rel)).not.toThrow();
  });

  it('imports run down the layers only', () => {
    const bad: string[] = [];
    for (const f of FILES) {
      const from = layerOf(f.rel);
      for (const spec of importsOf(readFileSync(f.abs, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = relative(SRC, resolve(dirname(f.abs), spec)).split('\\').join('/');
        const to = layerOf(target);
        if (from === 'cli') {
          if (to !== 'cli' && target !== 'index.ts') bad.push(`${f.rel} -> ${target} (the CLI imports only the public entry src/index.ts)`);
          continue;
        }
        if (to !== from && !ALLOWED[from]!.includes(to)) bad.push(`${f.rel} -> ${target} (${from} may not import ${to})`);
        if (BROWSER_ENTRIES.has(f.rel) && to === 'node') bad.push(`${f.rel} -> ${target} (a browser entry may not import the Node layer)`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("Node's built-ins only in node/ and cli/; onnxruntime-node only in node/onnxruntime.ts", () => {
    const bad: string[] = [];
    for (const f of FILES) {
      const layer = layerOf(f.rel);
      for (const spec of importsOf(readFileSync(f.abs, 'utf8'))) {
        if (spec.startsWith('node:') && !NODE_BUILTINS.has(layer)) bad.push(`${f.rel} imports ${spec}`);
        if (spec === 'onnxruntime-node' && f.rel !== ORT_NODE_FILE) bad.push(`${f.rel} imports onnxruntime-node`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the public entry exports at most 45 names', async () => {
    const text = readFileSync(join(SRC, 'index.ts'), 'utf8');
    const names = [...text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
    expect(names.length).toBeLessThanOrEqual(45);
    const mod = await import('../../src/index.ts');
    expect(Object.keys(mod).length).toBeLessThanOrEqual(45);
  });
});

describe('the core bundles for a browser', () => {
  it('every file outside node/ and cli/ bundles with platform=browser and no node: import', async () => {
    const core = FILES.filter((f) => !['node', 'cli'].includes(layerOf(f.rel)) && !['index.ts', 'choices.ts'].includes(f.rel));
    const entry = core.map((f) => `export * as m${core.indexOf(f)} from ${JSON.stringify(f.abs)};`).join('\n');
    const result = await build({
      stdin: { contents: entry, resolveDir: SRC, loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.filter((i) => i.startsWith('node:') || i.includes('onnxruntime-node'))).toEqual([]);
    expect(result.errors).toEqual([]);
    expect(inputs.some((i) => i.endsWith('src/train/loop.ts'))).toBe(true);
  }, 60_000);
});
