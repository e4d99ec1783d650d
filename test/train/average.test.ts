/**
 * `peanut-onnx average` / `averageCheckpoints` / `peanut-onnx/web`'s `average`: θ and the moments
 * are the weighted mean of the runs' (float32 arithmetic: within one rounding per term), the rest
 * is the first checkpoint's, merge and export-peft take the result; checkpoints of another
 * adapter, other base weights or another task are refused with one line, and nothing is written
 * over an input or a foreign file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkpointBytes, decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { average } from '../../src/web.ts';
import { runCli, tempDir } from '../helpers/cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'graphs', 'bert-tiny.onnx');
const DATA = join(ROOT, 'graphs', 'demo', 'train.jsonl');
const dir = tempDir('peanut-average-');
const adapted = join(dir, 'adapted.onnx');
const runs = [join(dir, 'run-a'), join(dir, 'run-b')];

async function ok(argv: string[]) {
  const r = await runCli(argv);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

beforeAll(async () => {
  await ok(['inject', MODEL, '--targets', 'query,value', '--rank', '8', '-o', adapted]);
  for (const [i, run] of runs.entries()) await ok(['train', adapted, '--task', 'seq-cls', '--data', DATA, '-o', run, '--steps', '4', '--batch-size', '8', '--seed', String(i + 1), '--lr', '1e-2', '--ep', 'cpu']);
}, 120_000);

const latest = (run: string) => decodeCheckpoint(readFileSync(join(run, 'checkpoints', 'step-4.safetensors')), run);

describe('average', () => {
  it('θ and the moments are the weighted mean; step, cursor, hyper-parameters, adapter and task are the first run’s', async () => {
    const out = join(dir, 'avg.safetensors');
    await ok(['average', runs[0]!, runs[1]!, '--weights', '3,1', '-o', out]);
    const [a, b] = runs.map(latest) as [ReturnType<typeof latest>, ReturnType<typeof latest>];
    const avg = decodeCheckpoint(readFileSync(out), out);
    for (const [field, pick] of [['params', (s: typeof a) => s.params], ['m', (s: typeof a) => s.m], ['v', (s: typeof a) => s.v]] as const) {
      for (const [k, t] of pick(a)) {
        const x = t.data as Float32Array;
        const y = pick(b).get(k)!.data as Float32Array;
        const z = pick(avg).get(k)!.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(z[i]! - (0.75 * x[i]! + 0.25 * y[i]!)) / Math.max(1e-30, Math.abs(x[i]!) + Math.abs(y[i]!)));
        expect(worst, `${field} ${k}`).toBeLessThan(3e-7);
      }
    }
    // The two runs differ (other data orders), so the mean is neither of them.
    const k = [...a.params.keys()].find((key) => key.includes('peanut_B'))!;
    expect(Array.from(avg.params.get(k)!.data as Float32Array)).not.toEqual(Array.from(a.params.get(k)!.data as Float32Array));
    expect({ step: avg.step, epoch: avg.epoch, position: avg.position, hyper: avg.hyper, peanut: avg.peanut, task: avg.task }).toEqual({ step: a.step, epoch: a.epoch, position: a.position, hyper: a.hyper, peanut: a.peanut, task: a.task });
    // The web module writes the same bytes.
    const files = runs.map((r) => readFileSync(join(r, 'checkpoints', 'step-4.safetensors')));
    expect(Buffer.from(average(files, [3, 1])).equals(readFileSync(out))).toBe(true);
    // merge and export-peft take it.
    await ok(['merge', adapted, '--checkpoint', out, '-o', join(dir, 'merged.onnx')]);
    await ok(['export-peft', out, '-o', join(dir, 'peft')]);
    // Equal weights by default; a second average may replace the first's output.
    await ok(['average', runs[0]!, runs[1]!, '-o', out]);
    const eq = decodeCheckpoint(readFileSync(out), out);
    const x = a.params.get(k)!.data as Float32Array;
    const y = b.params.get(k)!.data as Float32Array;
    (eq.params.get(k)!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(0.5 * x[i]! + 0.5 * y[i]!, 7));
  }, 60_000);

  it('usage errors exit 2: one checkpoint, a weight count that does not match, a negative weight', async () => {
    for (const argv of [
      ['average', runs[0]!, '-o', join(dir, 'x.safetensors')],
      ['average', runs[0]!, runs[1]!, '--weights', '1', '-o', join(dir, 'x.safetensors')],
      ['average', runs[0]!, runs[1]!, '--weights', '1,-2', '-o', join(dir, 'x.safetensors')],
    ]) {
      const r = await runCli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('refuses another adapter, other base weights, another task; never writes over an input or a foreign file', async () => {
    const other = join(dir, 'adapted-r4.onnx');
    await ok(['inject', MODEL, '--targets', 'query,value', '--rank', '4', '-o', other]);
    await ok(['train', other, '--task', 'seq-cls', '--data', DATA, '-o', join(dir, 'run-r4'), '--steps', '1', '--batch-size', '8', '--ep', 'cpu']);
    const refuse = async (argv: string[], pattern: RegExp) => {
      const r = await runCli(argv);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    };
    await refuse(['average', runs[0]!, join(dir, 'run-r4'), '-o', join(dir, 'y.safetensors')], /holds another adapter|is \[.*\] where/);
    // Another base: the same adapter record with another fingerprint for one layer.
    const a = latest(runs[0]!);
    const summary = JSON.parse(JSON.stringify(a.peanut)) as { modules: Record<string, { w0Hash?: string }> };
    const first = Object.values(summary.modules)[0]!;
    first.w0Hash = first.w0Hash!.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    const forged = join(dir, 'forged.safetensors');
    writeFileSync(forged, checkpointBytes({ ...a, peanut: summary }));
    await refuse(['average', runs[0]!, forged, '-o', join(dir, 'y.safetensors')], /E_BASE_MISMATCH|other base weights|different base/i);
    const otherTask = join(dir, 'task.safetensors');
    writeFileSync(otherTask, checkpointBytes({ ...a, task: 'token-cls' }));
    await refuse(['average', runs[0]!, otherTask, '-o', join(dir, 'y.safetensors')], /task 'token-cls'/);
    // Outputs: an input, or a file this command did not write.
    const input = join(runs[1]!, 'checkpoints', 'step-4.safetensors');
    const before = readFileSync(input);
    await refuse(['average', runs[0]!, input, '-o', input], /input/);
    expect(readFileSync(input).equals(before)).toBe(true);
    const foreign = join(dir, 'notes.txt');
    writeFileSync(foreign, 'mine');
    await refuse(['average', runs[0]!, runs[1]!, '-o', foreign], /not a peanut-onnx checkpoint/);
    expect(readFileSync(foreign, 'utf8')).toBe('mine');
  }, 60_000);
});
