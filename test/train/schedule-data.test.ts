/**
 * Schedules (Hugging Face `get_scheduler` values), the seeded data order, and JSONL collation with
 * dynamic padding.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { learningRate } from '../../src/train/schedule.ts';
import { BatchCursor, epochOrder } from '../../src/data/order.ts';
import { openExampleSet } from '../../src/node/data-files.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { tempDir } from '../helpers/cli.ts';

describe('learning-rate schedules (HF semantics: step k uses lambda(k − 1))', () => {
  const o = { lr: 2, warmup: 10, totalSteps: 100 };
  // [schedule, 1-based step, expected multiplier]
  const table: Array<['constant' | 'linear' | 'cosine', number, number]> = [
    ['constant', 1, 0], ['constant', 6, 0.5], ['constant', 11, 1], ['constant', 100, 1],
    ['linear', 1, 0], ['linear', 6, 0.5], ['linear', 11, 1], ['linear', 56, 0.5], ['linear', 100, 1 / 90],
    ['cosine', 6, 0.5], ['cosine', 11, 1], ['cosine', 56, 0.5], ['cosine', 34, 0.5 * (1 + Math.cos((Math.PI * 23) / 90))],
  ];
  for (const [schedule, step, mult] of table) {
    it(`${schedule} step ${step}: ${mult.toFixed(4)} × lr`, () => {
      expect(learningRate(step, { ...o, schedule })).toBeCloseTo(o.lr * mult, 12);
    });
  }
  it('no warmup: the first step uses the full learning rate', () => {
    for (const schedule of ['constant', 'linear', 'cosine'] as const) expect(learningRate(1, { lr: 1e-2, warmup: 0, totalSteps: 5, schedule })).toBe(1e-2);
  });
});

describe('data order', () => {
  it('each epoch is a seeded permutation of its own; --no-shuffle keeps file order', () => {
    const o = { size: 10, batchSize: 4, seed: 3, shuffle: true };
    const e0 = epochOrder(0, o);
    expect([...e0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(epochOrder(0, o)).toEqual(e0);
    expect(epochOrder(1, o)).not.toEqual(e0);
    expect(epochOrder(0, { ...o, seed: 4 })).not.toEqual(e0);
    expect(epochOrder(5, { ...o, shuffle: false })).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
  it('batches keep the last partial batch and roll into the next epoch; a cursor restored mid-epoch continues identically', () => {
    const o = { size: 10, batchSize: 4, seed: 1, shuffle: true };
    const c = new BatchCursor(o);
    const seen = Array.from({ length: 6 }, () => c.next());
    expect(seen.map((b) => b.length)).toEqual([4, 4, 2, 4, 4, 2]);
    expect(seen.slice(0, 3).flat()).toEqual(epochOrder(0, o));
    expect(seen.slice(3).flat()).toEqual(epochOrder(1, o));
    const d = new BatchCursor(o, 1, 4);
    expect(d.next()).toEqual(seen[4]);
  });
});

describe('JSONL collation', () => {
  it('right-pads each batch to its longest example; fills mask, token types and causal-LM labels', () => {
    const dir = tempDir();
    const path = join(dir, 'd.jsonl');
    writeFileSync(path, [{ input_ids: [5, 6, 7] }, { input_ids: [8] }, { input_ids: [9, 10, 11, 12, 13] }].map((r) => JSON.stringify(r)).join('\n'));
    const set = openExampleSet(path);
    const spec = {
      inputs: [{ name: 'input_ids', elemType: DT.INT64 }, { name: 'attention_mask', elemType: DT.INT64 }, { name: 'token_type_ids', elemType: DT.INT64 }, { name: 'labels', elemType: DT.INT64 }],
      labels: [{ name: 'labels', field: 'labels' }],
      task: 'causal-lm',
    };
    const b = set.batch([0, 1], spec);
    expect(b.get('input_ids')!.dims).toEqual([2, 3]);
    expect(Array.from(b.get('input_ids')!.data as BigInt64Array, Number)).toEqual([5, 6, 7, 8, 0, 0]);
    expect(Array.from(b.get('attention_mask')!.data as BigInt64Array, Number)).toEqual([1, 1, 1, 1, 0, 0]);
    expect(Array.from(b.get('token_type_ids')!.data as BigInt64Array, Number)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(b.get('labels')!.data as BigInt64Array, Number)).toEqual([5, 6, 7, 8, -100, -100]);
    expect(set.batch([2, 1], spec).get('input_ids')!.dims).toEqual([2, 5]);
    expect(set.batch([2], { ...spec, maxLength: 2 }).get('input_ids')!.dims).toEqual([1, 2]);
  });
  it('EXPECTED FAILURE - a missing field the model needs names it and lists what was found', () => {
    const dir = tempDir();
    const path = join(dir, 'd.jsonl');
    writeFileSync(path, JSON.stringify({ input_ids: [1, 2] }) + '\n');
    expect(() => openExampleSet(path).batch([0], { inputs: [{ name: 'labels', elemType: DT.INT64 }], labels: [{ name: 'labels', field: 'labels' }], task: 'seq-cls' })).toThrow(/no field 'labels', which the model needs \(fields found: input_ids\)/);
    writeFileSync(path, '{"input_ids": [1, 2]}\n{oops\n');
    expect(() => openExampleSet(path)).toThrow(/d\.jsonl:2: not valid JSON/);
  });
});
