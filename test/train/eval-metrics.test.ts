/**
 * The per-task metrics of `evaluate`, on predictions chosen here (a stub session returns them):
 * token accuracy skips −100 labels; QA's exact span accuracy needs both argmaxes right and does
 * not count examples whose positions lie outside the sequence; masked-LM perplexity is exp of the
 * loss weighted by masked tokens; fp16 heads are decoded before the argmax.
 */
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/train/evaluate.ts';
import { exampleSetFromRows, type CollateSpec } from '../../src/data/example-set.ts';
import { DataType as DT, floatToHalfBits } from '../../src/onnx/dtype.ts';
import type { HostTensor, Session } from '../../src/runtime/session.ts';

/** A session returning `outputs(batch)` for each batch (the loss first). */
function stub(outputs: (feeds: Record<string, { data: unknown; dims: readonly number[] }>) => Record<string, HostTensor>): Session {
  return { ep: 'cpu', inputNames: [], outputNames: [], run: async (feeds) => outputs(feeds as never), release: async () => {} };
}

const f32 = (values: number[], dims: number[]): HostTensor => ({ type: 'float32', data: Float32Array.from(values), dims });
const onehot = (classes: number[], C: number) => classes.flatMap((c) => Array.from({ length: C }, (_, i) => (i === c ? 5 : 0)));

describe('evaluation metrics per task', () => {
  it('token-cls: accuracy over the tokens whose label is not −100', async () => {
    const rows = [{ input_ids: [1, 2, 3], labels: [-100, 1, 2] }, { input_ids: [4, 5], labels: [0, -100] }];
    const spec: CollateSpec = { inputs: [{ name: 'input_ids', elemType: DT.INT64 }, { name: 'labels', elemType: DT.INT64 }], labels: [{ name: 'labels', field: 'labels' }], task: 'token-cls' };
    // predictions per token [B=2, T=3]: 0 1 0 | 0 2 2 → right on (0,1) and (1,0), wrong on (0,2)
    const session = stub(() => ({ loss: f32([0.7], []), prediction: f32(onehot([0, 1, 0, 0, 2, 2], 3), [2, 3, 3]) }));
    const m = await evaluate(session, exampleSetFromRows(rows, 'rows'), spec, {}, 4);
    expect(m.eval_accuracy).toBeCloseTo(2 / 3, 12);
    expect(m.eval_loss).toBeCloseTo(0.7, 6);
    expect(m.eval_perplexity).toBeUndefined();
  });

  it('qa: exact span accuracy; examples whose positions lie past the sequence are not counted', async () => {
    const rows = [
      { input_ids: [1, 2, 3, 4], start_positions: 1, end_positions: 2 }, // both right
      { input_ids: [1, 2, 3, 4], start_positions: 1, end_positions: 3 }, // end wrong
      { input_ids: [1, 2, 3, 4], start_positions: 9, end_positions: 9 }, // past the sequence
    ];
    const labels = [{ name: 'start_positions', field: 'start_positions' }, { name: 'end_positions', field: 'end_positions' }];
    const spec: CollateSpec = { inputs: [{ name: 'input_ids', elemType: DT.INT64 }, { name: 'start_positions', elemType: DT.INT64 }, { name: 'end_positions', elemType: DT.INT64 }], labels, task: 'qa' };
    const half = (v: number[]) => ({ type: 'float16', data: Uint16Array.from(v, (x) => floatToHalfBits(x)), dims: [3, 4] }) as HostTensor;
    const session = stub(() => ({ loss: f32([1.1], []), prediction: half(onehot([1, 1, 1], 4)), 'prediction.1': half(onehot([2, 2, 2], 4)) }));
    const m = await evaluate(session, exampleSetFromRows(rows, 'rows'), spec, {}, 8);
    expect(m.eval_accuracy).toBe(1 / 2);
    expect(m.eval_examples).toBe(3);
  });

  it('masked-lm: perplexity = exp(loss averaged over the masked tokens of every batch)', async () => {
    const rows = [{ input_ids: [1, 2, 3], labels: [-100, 2, 3] }, { input_ids: [4, 5, 6], labels: [-100, -100, 6] }];
    const spec: CollateSpec = { inputs: [{ name: 'input_ids', elemType: DT.INT64 }, { name: 'labels', elemType: DT.INT64 }], labels: [{ name: 'labels', field: 'labels' }], task: 'masked-lm' };
    // batch of one: losses 2.0 (2 masked tokens) and 0.5 (1 masked token)
    const session = stub((feeds) => ({ loss: f32([Number((feeds.input_ids!.data as BigInt64Array)[0]) === 1 ? 2 : 0.5], []), prediction: f32(new Array(3 * 7).fill(0), [1, 3, 7]) }));
    const m = await evaluate(session, exampleSetFromRows(rows, 'rows'), spec, {}, 1);
    expect(m.eval_loss).toBeCloseTo((2 * 2 + 0.5 * 1) / 3, 6);
    expect(m.eval_perplexity).toBeCloseTo(Math.exp(1.5), 5);
    expect(m.eval_accuracy).toBeUndefined();
  });
});
