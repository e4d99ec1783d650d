/**
 * The browser tests (`npm run test:browser`): headless Chromium through playwright-core, not part
 * of `npm test`. One file at a time: each starts its own Chromium, and WebGPU on SwiftShader
 * uses every core it gets.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/browser/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
