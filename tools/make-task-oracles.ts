/**
 * PyTorch oracles for the token-cls, qa and masked-lm loss heads:
 *
 *   npx tsx tools/make-task-oracles.ts [outDir]      (default: test/fixtures/)
 *
 * For each task a small BERT with that task's head is built by tools/lib/bert.ts (parameters
 * named by module, so PyTorch can load them by name), PEANuT targets and fixed non-zero θ are
 * chosen, and a batch of examples written; then `/usr/bin/python3 tools/oracles/bert_tasks.py`
 * re-implements the same BERT in PyTorch (transformers' BertFor* code paths, written out),
 * applies PEANuT with θ, and writes the loss, the head outputs and every θ gradient PyTorch
 * computes (`expected.safetensors`, `expected.json`). Folders: `bert_<task>/` with `model.onnx`,
 * `tweaker.safetensors`, `batch.jsonl`, `config.json` and the expected files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveModel } from '../src/node/model-files.ts';
import { writeSafetensors } from '../src/node/safetensors-files.ts';
import { inject } from '../src/adapter/inject.ts';
import type { SafeTensor } from '../src/formats/safetensors.ts';
import { Random } from '../src/util/random.ts';
import { buildBert, type BertConfig } from './lib/bert.ts';

type OracleTask = 'token-cls' | 'qa' | 'masked-lm';

const BASE = { vocabSize: 40, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 32, maxPositions: 24, opset: 14, initStd: 0.2, biasStd: 0.05, weightNames: 'module' } as const;
const PEANUT = { targets: 'query,value,intermediate.dense', r: 4 };
const MASK_ID = 3;

/** Four examples of different lengths (right padding happens in collation). */
function examples(task: OracleTask, rng: Random, numLabels: number): object[] {
  const lengths = [9, 6, 11, 4];
  return lengths.map((n, i) => {
    const ids = [1, ...Array.from({ length: n - 2 }, () => 4 + rng.int(BASE.vocabSize - 4)), 2];
    if (task === 'token-cls') {
      // −100 on [CLS]/[SEP], as word-piece labelling leaves special tokens out
      return { input_ids: ids, labels: ids.map((_, t) => (t === 0 || t === n - 1 ? -100 : rng.int(numLabels))) };
    }
    if (task === 'masked-lm') {
      const labels = ids.map(() => -100);
      const masked = [...ids];
      for (let t = 1; t < n - 1; t++) {
        if (rng.next() < 0.35 || t === 1) {
          labels[t] = ids[t]!;
          masked[t] = MASK_ID;
        }
      }
      return { input_ids: masked, labels };
    }
    // qa: a span inside the sequence; the third example's answer lies past it (ignored, as HF clamps it)
    const start = 1 + rng.int(n - 2);
    const end = Math.min(n - 2, start + rng.int(3));
    return i === 2 ? { input_ids: ids, token_type_ids: ids.map((_, t) => (t > 4 ? 1 : 0)), start_positions: 30, end_positions: 31 } : { input_ids: ids, token_type_ids: ids.map((_, t) => (t > 4 ? 1 : 0)), start_positions: start, end_positions: end };
  });
}

export function makeOracle(task: OracleTask, outDir: string): string {
  const dir = join(outDir, `bert_${task}`);
  mkdirSync(dir, { recursive: true });
  const numLabels = task === 'token-cls' ? 5 : 2;
  const config: BertConfig = { ...BASE, numLabels, task, seed: 7 };
  const model = buildBert(config);
  saveModel(model, join(dir, 'model.onnx'), { externalData: false });

  // θ: every parameter N(0, 0.2²), so every gradient is non-zero (B = 0 would zero A's).
  const adapted = inject(model, { targets: PEANUT.targets, r: PEANUT.r, seed: 0 });
  const tweaker = new Map<string, SafeTensor>();
  for (const t of adapted.meta.targets) {
    for (const p of t.params) {
      const values = new Float32Array(p.shape[0] * p.shape[1]);
      const rng = Random.forKey(4001, p.name);
      for (let i = 0; i < values.length; i++) values[i] = 0.2 * rng.normal();
      tweaker.set(p.name, { dtype: 'F32', shape: [...p.shape], data: values });
    }
  }
  writeSafetensors(join(dir, 'tweaker.safetensors'), tweaker, { format: 'peanut-onnx oracle tweaker' });
  const rows = examples(task, new Random(11), numLabels);
  writeFileSync(join(dir, 'batch.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const targets = adapted.meta.targets.map((t) => ({ module: t.module, weight: t.weight, params: t.params.map((p) => p.name) }));
  const record = {
    task,
    model: { ...config, layerNormEps: 1e-12, gelu: 'erf', positionIds: 'slice' },
    peanut: { ...adapted.meta.config, targets: PEANUT.targets, keys: targets },
    batch: 'batch.jsonl (right-padded with 0 to the longest example; attention_mask 1 on real tokens; token_type_ids 0 where absent; per-token labels padded with -100)',
    generator: 'tools/make-task-oracles.ts, then /usr/bin/python3 tools/oracles/bert_tasks.py',
  };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(record, null, 2)}\n`);
  execFileSync('/usr/bin/python3', [join('tools', 'oracles', 'bert_tasks.py'), dir], { stdio: 'inherit' });
  return dir;
}

const outDir = process.argv[2] ?? join('test', 'fixtures');
for (const task of ['token-cls', 'qa', 'masked-lm'] as const) console.log(`wrote ${makeOracle(task, outDir)}`);
