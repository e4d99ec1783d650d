/**
 * Bad training data is refused before the first step: `train` (and `grad`) exit 1 with one line
 * naming the example (`file:line`), the problem and the fix, write nothing (no run directory, no
 * gradients file) and leave every input byte-identical. Bounds come from the model: classes from
 * the head (bert_tiny: 2, bert_token-cls: 5), the vocabulary from the table `input_ids` indexes
 * (64 / 40), positions from the position table (128 / 24).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR, loadFixture } from '../helpers/fixtures.ts';
import { encodeSafetensors } from '../../src/formats/safetensors.ts';

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

let dir: string;
const models: Record<'seq' | 'lm' | 'tok', string> = { seq: '', lm: '', tok: '' };

beforeAll(async () => {
  dir = tempDir('peanut-bad-data-');
  const adapt = async (model: string, out: string, targets: string) => {
    const r = await runCli(['inject', model, '-o', out, '--targets', targets, '--rank', '2']);
    expect(r.code, r.stderr).toBe(0);
    return out;
  };
  models.seq = await adapt(loadFixture('bert_tiny_opset14').modelPath, join(dir, 'bert.onnx'), 'query,value');
  models.lm = await adapt(loadFixture('gpt2_tiny').modelPath, join(dir, 'gpt2.onnx'), 'c_attn');
  models.tok = await adapt(join(FIXTURES_DIR, 'bert_token-cls', 'model.onnx'), join(dir, 'tok.onnx'), 'query,value');
}, 60_000);

const good = { input_ids: [1, 5, 6, 2], labels: 1 };
const goodTokens = { input_ids: [1, 5, 6, 2], labels: [-100, 3, 4, -100] };

/** [case, model, task, rows (the bad one on line 3), message pattern]. */
const CASES: Array<[string, keyof typeof models, string, unknown[], RegExp]> = [
  ['a label ≥ the number of classes', 'seq', 'seq-cls', [good, good, { input_ids: [1, 7, 2], labels: 2 }], /'labels' holds 2, out of range: the model's head has 2 classes \(0…1\); fix the labels/],
  ['a negative label (not −100)', 'seq', 'seq-cls', [good, good, { input_ids: [1, 7, 2], labels: -1 }], /'labels' holds -1, out of range/],
  ['a list label for seq-cls', 'seq', 'seq-cls', [good, good, { input_ids: [1, 7, 2], labels: [0, 1, 0] }], /'labels' is a list, but seq-cls takes one class per example; .*--task token-cls/],
  ['a scalar label for causal-lm', 'lm', 'causal-lm', [{ input_ids: [1, 2, 3], labels: [1, 2, 3] }, { input_ids: [4, 5], labels: [4, 5] }, { input_ids: [1, 7, 2], labels: 3 }], /'labels' is one value, but causal-lm takes one label per token; store 'labels' as a list as long as 'input_ids'/],
  ['a per-token label ≥ the classes', 'tok', 'token-cls', [goodTokens, goodTokens, { input_ids: [1, 7, 2], labels: [-100, 5, -100] }], /'labels' holds 5 at position 1, out of range: the model's head has 5 classes/],
  ['per-token labels of the wrong length', 'tok', 'token-cls', [goodTokens, goodTokens, { input_ids: [1, 7, 2], labels: [-100, 1] }], /'labels' has 2 labels for 3 tokens/],
  ['a token id ≥ the vocabulary', 'seq', 'seq-cls', [good, good, { input_ids: [1, 70, 2], labels: 0 }], /'input_ids' holds 70 at position 1, outside the token ids the model knows \(the model has 64 \(0…63\)\); tokenize with the model's own tokenizer/],
  ['a negative token id', 'lm', 'causal-lm', [{ input_ids: [1, 2] }, { input_ids: [3] }, { input_ids: [1, -4] }], /'input_ids' holds -4 at position 1, outside the token ids/],
  ['a float token id', 'seq', 'seq-cls', [good, good, { input_ids: [1, 5, 1.5], labels: 0 }], /'input_ids' holds 1\.5 at position 2; token ids are integers; store whole numbers/],
  ['a non-numeric token id', 'seq', 'seq-cls', [good, good, { input_ids: [1, 'the', 2], labels: 0 }], /'input_ids' holds "the" at position 1; token ids are integers; store numbers, not strings/],
  ['attention_mask shorter than input_ids', 'seq', 'seq-cls', [{ ...good, attention_mask: [1, 1, 1, 1] }, { ...good, attention_mask: [1, 1, 1, 0] }, { input_ids: [1, 5, 2], attention_mask: [1, 1], labels: 0 }], /'attention_mask' has 2 values for 3 tokens in 'input_ids'/],
  ['a sequence longer than the positions', 'tok', 'token-cls', [goodTokens, goodTokens, { input_ids: Array.from({ length: 30 }, () => 5), labels: Array.from({ length: 30 }, () => 1) }], /the example has 30 tokens, more than the model's 24 positions; pass --max-length 24 to truncate/],
  ['a field missing on one line', 'seq', 'seq-cls', [good, good, { input_ids: [1, 5, 2] }], /the example has no 'labels', which other examples have; give every example a 'labels'/],
];

async function expectRefused(args: string[], inputs: string[], pattern: RegExp, out: string): Promise<string> {
  const before = inputs.map(sha);
  const r = await runCli(args);
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(existsSync(out), `${out} was written`).toBe(false);
  expect(inputs.map(sha)).toEqual(before);
  return lines[0]!;
}

describe('bad training data is refused before the first step', () => {
  it.each(CASES)('EXPECTED FAILURE - %s', async (name, model, task, rows, pattern) => {
    const data = join(dir, `${name.replace(/\W+/g, '-')}.jsonl`);
    writeFileSync(data, jsonl(rows));
    const run = join(dir, `run-${name.replace(/\W+/g, '-')}`);
    const line = await expectRefused(['train', models[model], '--task', task, '--data', data, '-o', run, '--steps', '1', '--ep', 'cpu'], [data, models[model]], pattern, run);
    expect(line).toContain(`${data}:3: `);
  }, 60_000);

  it('EXPECTED FAILURE - an empty data set', async () => {
    const data = join(dir, 'empty.jsonl');
    writeFileSync(data, '\n\n');
    const run = join(dir, 'run-empty');
    await expectRefused(['train', models.seq, '--task', 'seq-cls', '--data', data, '-o', run, '--steps', '1'], [data], /empty\.jsonl holds no examples; write one JSON example a line/, run);
  }, 60_000);

  it('EXPECTED FAILURE - bad eval data is refused too, before anything is written', async () => {
    const data = join(dir, 'ok.jsonl');
    const evalData = join(dir, 'bad-eval.jsonl');
    writeFileSync(data, jsonl([good, good]));
    writeFileSync(evalData, jsonl([good, { input_ids: [1, 99], labels: 0 }]));
    const run = join(dir, 'run-eval');
    const line = await expectRefused(['train', models.seq, '--task', 'seq-cls', '--data', data, '--eval', evalData, '-o', run, '--steps', '1'], [data, evalData], /'input_ids' holds 99 at position 1/, run);
    expect(line).toContain(`${evalData}:2: `);
  }, 60_000);

  it('EXPECTED FAILURE - safetensors data: float ids and out-of-range labels name the row', async () => {
    const write = (name: string, tensors: Parameters<typeof encodeSafetensors>[0]) => {
      const p = join(dir, name);
      writeFileSync(p, Buffer.concat(encodeSafetensors(tensors).map((c) => Buffer.from(c))));
      return p;
    };
    const ids = BigInt64Array.from([1n, 5n, 2n, 1n, 6n, 2n]);
    const floatIds = write('float-ids.safetensors', { input_ids: { dtype: 'F32', shape: [2, 3], data: Float32Array.from(ids, Number) }, labels: { dtype: 'I64', shape: [2], data: BigInt64Array.from([0n, 1n]) } });
    await expectRefused(['train', models.seq, '--task', 'seq-cls', '--data', floatIds, '-o', join(dir, 'r1'), '--steps', '1'], [floatIds], /'input_ids' is F32; token ids must be an integer tensor; store them as I64/, join(dir, 'r1'));
    const badLabel = write('bad-label.safetensors', { input_ids: { dtype: 'I64', shape: [2, 3], data: ids }, labels: { dtype: 'I64', shape: [2], data: BigInt64Array.from([0n, 7n]) } });
    const line = await expectRefused(['train', models.seq, '--task', 'seq-cls', '--data', badLabel, '-o', join(dir, 'r2'), '--steps', '1'], [badLabel], /row 1: 'labels' holds 7, out of range: the model's head has 2 classes/, join(dir, 'r2'));
    expect(line).toContain(badLabel);
  }, 60_000);

  it('EXPECTED FAILURE - grad checks the batch before writing gradients', async () => {
    const data = join(dir, 'grad-bad.jsonl');
    writeFileSync(data, jsonl([good, { input_ids: [1, 5, 2], labels: 9 }]));
    const out = join(dir, 'grads.safetensors');
    await expectRefused(['grad', models.seq, '--task', 'seq-cls', '--data', data, '-o', out], [data, models.seq], /grad-bad\.jsonl:2: 'labels' holds 9, out of range/, out);
  }, 60_000);

  it('the refused long example trains once --max-length truncates it', async () => {
    const data = join(dir, 'long.jsonl');
    writeFileSync(data, jsonl([goodTokens, { input_ids: Array.from({ length: 30 }, () => 5), labels: Array.from({ length: 30 }, () => 1) }]));
    const r = await runCli(['train', models.tok, '--task', 'token-cls', '--data', data, '-o', join(dir, 'run-long'), '--steps', '1', '--max-length', '24', '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
  }, 60_000);
});
