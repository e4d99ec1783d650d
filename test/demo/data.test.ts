/** The shipped demo data follow their documented rules and are reproducible from their seeds. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEMO_ASSETS } from '../../src/cli/demo/run-demo.ts';
import { DEMO_DATA, PRETRAIN } from '../../tools/lib/demo-graphs.ts';
import { CLS, LOW_END, majorityLabel, makeExamples, SEP, SUPERMAJORITY, toJsonl, type Example } from '../../tools/lib/synthetic.ts';

const read = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Example);

describe('demo data', () => {
  it('graphs/demo/*.jsonl are exactly what tools/make-graphs.ts generates from DEMO_DATA', () => {
    for (const [path, spec] of [[DEMO_ASSETS.train, DEMO_DATA.train], [DEMO_ASSETS.eval, DEMO_DATA.eval]] as const) {
      expect(readFileSync(path, 'utf8')).toBe(toJsonl(makeExamples(spec.task, spec.examples, spec.seed, spec.options)));
    }
  });

  it('supermajority labels: 1 iff at least 70% of the content tokens are low; [CLS] … [SEP] framing', () => {
    const data = read(DEMO_ASSETS.eval);
    expect(data).toHaveLength(DEMO_DATA.eval.examples);
    for (const e of data) {
      expect(e.input_ids[0]).toBe(CLS);
      expect(e.input_ids.at(-1)).toBe(SEP);
      const content = e.input_ids.slice(1, -1);
      const low = content.filter((t) => t < LOW_END).length;
      expect(e.labels).toBe(low >= SUPERMAJORITY * content.length ? 1 : 0);
      expect(e.attention_mask.every((m) => m === 1)).toBe(true);
    }
    const pos = data.filter((e) => e.labels === 1).length / data.length;
    expect(pos).toBeGreaterThan(0.4);
    expect(pos).toBeLessThan(0.6);
  });

  it('pre-training task differs: majority labels (clean eval set) disagree with supermajority on a good share', () => {
    const data = read(DEMO_ASSETS.eval);
    const disagree = data.filter((e) => majorityLabel(e.input_ids.slice(1, -1)) !== e.labels).length / data.length;
    expect(disagree).toBeGreaterThan(0.2);
    expect(makeExamples(PRETRAIN.eval.task, 50, PRETRAIN.eval.seed).every((e) => e.labels === majorityLabel(e.input_ids.slice(1, -1)))).toBe(true);
  });
});
