/**
 * Every test file gets its own temporary root: `os.tmpdir()` (and so every `mkdtempSync` in the
 * tests and in child processes they spawn) points into it, and it is removed when the file ends,
 * so the suite leaves nothing behind in the system temp directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'peanut-onnx-tests-'));
process.env.TMPDIR = root;

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
