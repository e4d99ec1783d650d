/**
 * The CLI fuzzer (tools/lib/fuzz.ts) in the suite: 300 seeded cases of damaged models, fixtures,
 * checkpoints, adapters, data and options, each run through `main()`. None may print a stack
 * trace, exit outside 0/1/2, change an input, write anything when it refuses, or succeed with an
 * output ONNX Runtime cannot load. `npm run fuzz` runs the same harness at length (2,000 cases by default).
 */
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.ts';
import { formatSummary, runFuzz } from '../../tools/lib/fuzz.ts';

describe('fuzzing the command line', () => {
  it('300 seeded cases: no stack trace, exit 0/1/2, inputs unchanged, nothing written on a refusal, every exit-0 output loads in ONNX Runtime', async () => {
    const summary = await runFuzz({ seed: 20_250_101, cases: 300, root: tempDir('peanut-fuzz-') });
    expect(summary.problems, formatSummary(summary)).toEqual([]);
    // The corpus reaches every command, and both outcomes: work done and refusals.
    for (const cmd of ['inspect', 'inject', 'merge', 'grad', 'train', 'export-peft', 'import-peft']) expect(Object.keys(summary.byCommand), cmd).toContain(cmd);
    expect(summary.byCode.ok).toBeGreaterThan(30);
    expect(summary.byCode.refused).toBeGreaterThan(100);
  }, 180_000);
});
