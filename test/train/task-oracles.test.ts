/**
 * token-cls, qa and masked-lm against PyTorch (test/fixtures/bert_<task>, made by
 * tools/make-task-oracles.ts): `inject --init` the oracle's θ, `grad` the oracle's batch, and the
 * loss and every θ gradient match transformers' BertFor* losses (DESIGN.md bars: loss within 1e-5
 * relative, each gradient within 1e-3 of its tensor's scale). `train --eval` at step 0 reports
 * the same loss and the metric computed here from PyTorch's own head outputs.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR, relError } from '../helpers/fixtures.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';

const TASKS = ['token-cls', 'qa', 'masked-lm'] as const;

interface Row {
  input_ids: number[];
  labels?: number[];
  start_positions?: number;
  end_positions?: number;
}

const argmax = (x: ArrayLike<number>, at: number, n: number) => {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[at + i]! > x[at + best]!) best = i;
  return best;
};

/** The task's metric from PyTorch's head outputs: token accuracy, exact span accuracy, perplexity. */
function expectedMetric(task: (typeof TASKS)[number], rows: Row[], out: Map<string, { shape: number[]; data: ArrayLike<number | bigint> }>, loss: number): number {
  if (task === 'masked-lm') return Math.exp(loss);
  if (task === 'token-cls') {
    const logits = out.get('logits')!;
    const [, T, C] = logits.shape as [number, number, number];
    const x = Array.from(logits.data, Number);
    let right = 0;
    let n = 0;
    rows.forEach((r, b) =>
      r.labels!.forEach((y, t) => {
        if (y === -100) return;
        n++;
        if (argmax(x, (b * T + t) * C, C) === y) right++;
      }),
    );
    return right / n;
  }
  const [s, e] = [out.get('start_logits')!, out.get('end_logits')!];
  const T = s.shape[1]!;
  const [xs, xe] = [Array.from(s.data, Number), Array.from(e.data, Number)];
  let right = 0;
  let n = 0;
  rows.forEach((r, b) => {
    if (r.start_positions! >= T || r.end_positions! >= T) return; // ignored by the loss, not counted
    n++;
    if (argmax(xs, b * T, T) === r.start_positions && argmax(xe, b * T, T) === r.end_positions) right++;
  });
  return right / n;
}

describe('new tasks against PyTorch', () => {
  it.each(TASKS)('%s: loss and every θ gradient match transformers; eval at step 0 gives its loss and metric', async (task) => {
    const fixture = join(FIXTURES_DIR, `bert_${task}`);
    const dir = tempDir();
    const adapted = join(dir, 'adapted.onnx');
    const inj = await runCli(['inject', join(fixture, 'model.onnx'), '-o', adapted, '--targets', 'query,value,intermediate.dense', '--rank', '4', '--init', join(fixture, 'tweaker.safetensors')]);
    expect(inj.code, inj.stderr).toBe(0);
    const grads = join(dir, 'grads.safetensors');
    const batch = join(fixture, 'batch.jsonl');
    const g = await runCli(['grad', adapted, '--task', task, '--data', batch, '-o', grads]);
    expect(g.code, g.stderr).toBe(0);
    const got = readSafetensors(grads).tensors;
    const want = readSafetensors(join(fixture, 'expected.safetensors')).tensors;
    const loss = Number(want.get('loss')!.data[0]);
    const lossErr = Math.abs(Number(got.get('loss')!.data[0]) - loss) / Math.abs(loss);
    expect(lossErr).toBeLessThan(1e-5);
    let worst = 0;
    let keys = 0;
    for (const [k, t] of want) {
      if (!k.endsWith('.grad')) continue;
      const e = relError(Array.from(got.get(k)!.data, Number), Array.from(t.data, Number));
      expect(e, k).toBeLessThan(1e-3);
      worst = Math.max(worst, e);
      keys++;
    }
    expect(keys).toBe(12);
    expect(got.size).toBe(keys + 1);
    console.info(`${task}: loss rel err ${lossErr.toExponential(2)}, max θ-gradient rel err ${worst.toExponential(2)} over ${keys} tensors (vs PyTorch)`);

    const run = join(dir, 'run');
    const t = await runCli(['train', adapted, '--task', task, '--data', batch, '--eval', batch, '-o', run, '--steps', '1', '--batch-size', '4', '--ep', 'cpu', '--threads', '1', '--json']);
    expect(t.code, t.stderr).toBe(0);
    const first = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).find((l) => 'eval_loss' in l)!;
    expect(first.step).toBe(0);
    expect(Math.abs(first.eval_loss! - loss) / loss).toBeLessThan(1e-5);
    const rows = readFileSync(batch, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
    const metric = expectedMetric(task, rows, want, loss);
    if (task === 'masked-lm') expect(first.eval_perplexity! / metric).toBeCloseTo(1, 5);
    else expect(first.eval_accuracy).toBeCloseTo(metric, 6);
    console.info(`${task}: eval ${task === 'masked-lm' ? `perplexity ${first.eval_perplexity}` : `accuracy ${first.eval_accuracy}`} (from PyTorch's outputs: ${metric})`);
  }, 60_000);
});
