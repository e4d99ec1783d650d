/**
 * `npm run fuzz [-- --seed N --cases N --first N --keep]`: the CLI fuzzer (tools/lib/fuzz.ts) at
 * length: 2,000 cases by default, a summary per command, and every problem with the command that
 * repeats it. Exits 1 when any case ended badly. `--keep` leaves failed cases' folders in place.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, runFuzz } from './lib/fuzz.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    cases: { type: 'string', default: '2000' },
    first: { type: 'string', default: '0' },
    keep: { type: 'boolean', default: false },
  },
});
const root = mkdtempSync(join(tmpdir(), 'peanut-onnx-fuzz-'));
const cases = Number(values.cases);
let done = 0;
const summary = await runFuzz({
  seed: Number(values.seed),
  cases,
  first: Number(values.first),
  root,
  keepFailed: values.keep,
  onResult: (r) => {
    done++;
    if (r.problem) process.stderr.write(`\nPROBLEM #${r.id}: ${r.problem}\n  ${r.description}\n`);
    if (done % 100 === 0) process.stderr.write(`${done}/${cases}\n`);
  },
});
process.stdout.write(`${formatSummary(summary)}\n`);
if (!(values.keep && summary.problems.length)) rmSync(root, { recursive: true, force: true });
else process.stdout.write(`failed cases kept in ${root}\n`);
process.exitCode = summary.problems.length ? 1 : 0;
