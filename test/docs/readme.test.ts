/**
 * README's library example runs as written: the TypeScript block under "## Library" is extracted,
 * its `'peanut-onnx'` import pointed at the sources, and executed in a scratch directory holding
 * the shipped graphs.
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tempDir } from '../helpers/cli.ts';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

function libraryExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error("README has no ```ts block under '## Library'");
  return m[1]!;
}

describe('README library example', () => {
  const cwd = process.cwd();
  afterAll(() => process.chdir(cwd));

  it('runs as written and trains the shipped model', async () => {
    const dir = tempDir('peanut-readme-');
    cpSync(join(ROOT, 'graphs'), join(dir, 'graphs'), { recursive: true });
    const code = libraryExample().replace("from 'peanut-onnx'", `from ${JSON.stringify(join(ROOT, 'src', 'index.ts'))}`);
    expect(code).toContain(join(ROOT, 'src', 'index.ts'));
    const file = join(dir, 'example.ts');
    writeFileSync(file, code);
    const logged: unknown[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logged.push(...args));
    process.chdir(dir);
    try {
      await import(file);
    } finally {
      log.mockRestore();
      process.chdir(cwd);
    }
    for (const f of ['adapted.onnx', 'merged.onnx', 'run/metrics.jsonl']) expect(existsSync(join(dir, f)), f).toBe(true);
    const last = logged.at(-1) as { step: number; eval_accuracy: number };
    expect(last.step).toBe(125); // 2,000 examples / batch 16, one epoch
    expect(last.eval_accuracy).toBeGreaterThan(0.9); // the frozen model starts at 0.674
  }, 120_000);
});
