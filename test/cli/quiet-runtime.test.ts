/**
 * ONNX Runtime's own warnings (printed from native code, with terminal colour codes) do not reach
 * the user's stderr: the library's sessions log errors only. The control run shows the same model
 * does make onnxruntime-node warn when it is used as it comes.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'scripts', 'unused-initializer-session.ts');

/** stderr of one session creation, in a process of its own (native output bypasses JS streams). */
function stderrOf(mode: 'ours' | 'raw'): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, mode], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

describe('no runtime noise', () => {
  it("onnxruntime-node's warnings (with colour codes) are not printed by the library's sessions", () => {
    expect(stderrOf('raw')).toMatch(/\x1b\[[0-9;]*m.*Removing initializer 'unused'/);
    expect(stderrOf('ours')).toBe('');
  }, 60_000);
});
