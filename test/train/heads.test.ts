/**
 * Choosing the head (`--head NAME[,NAME]`) and targets that cannot reach it.
 *
 *  - A head that cannot be found: the error lists the graph's outputs and the exact flag.
 *  - Two heads (BERT pre-training: MLM scores and NSP logits, the real torch export and a
 *    generated one): a target feeding only the other head is left out with one warning line
 *    naming it, training goes on, its θ stay as they were in every checkpoint (so merge and
 *    export see every key); when no target reaches the head, the run is refused.
 *  - The manifest carries the heads; `train <dir>` with another `--head` is refused.
 *  - QA on a keras2onnx export whose heads are `output_1` / `output_2` and whose sequence dim is
 *    fixed (7): batches are padded to it, and it trains end to end.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { buildBert } from '../../tools/lib/transformers.ts';

const REAL = join(FIXTURES_DIR, 'real-exports');
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

let dir: string;
let mlm: string;
let nsp: string;
let qa: string;
beforeAll(() => {
  dir = tempDir('peanut-heads-');
  mlm = join(dir, 'mlm.jsonl');
  nsp = join(dir, 'nsp.jsonl');
  qa = join(dir, 'qa.jsonl');
  const ids = (i: number, n: number) => Array.from({ length: n }, (_, t) => (i * 13 + t * 7) % 90 + 5);
  writeFileSync(mlm, jsonl(Array.from({ length: 8 }, (_, i) => ({ input_ids: ids(i, 6), labels: ids(i, 6).map((v, t) => (t % 3 === 1 ? v : -100)) }))));
  writeFileSync(nsp, jsonl(Array.from({ length: 8 }, (_, i) => ({ input_ids: ids(i, 5), labels: i % 2 }))));
  writeFileSync(qa, jsonl(Array.from({ length: 8 }, (_, i) => ({ input_ids: ids(i, 3 + (i % 4)).map((v) => v % 20), start_positions: i % 3, end_positions: 1 + (i % 3) }))));
});

async function adapt(model: string, targets: string, name: string): Promise<string> {
  const out = join(dir, name);
  const r = await runCli(['inject', model, '-o', out, '--targets', targets, '--rank', '4']);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

describe('--head', () => {
  it('EXPECTED FAILURE - a head that cannot be found lists the outputs and gives the flag to pass', async () => {
    const adapted = await adapt(join(REAL, 'TFBertForQuestionAnswering.onnx'), 'bert.encoder.layer.23.attention.self.value', 'qa-head.onnx');
    const out = join(dir, 'never.safetensors');
    const r = await runCli(['grad', adapted, '--task', 'qa', '--data', qa, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      "error: cannot find the head of --task qa: the model has no output named 'start_logits' and 'end_logits'; its graph outputs are 'output_1' [batch_size, 7], 'output_2' [batch_size, 7]; pass --head output_1,output_2",
    );
    const one = await runCli(['grad', adapted, '--task', 'qa', '--head', 'output_1', '--data', qa, '-o', out]);
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/--task qa reads two outputs \(start and end logits\), but --head names 1; .*pass --head output_1,output_2/);
    const bert = await adapt(join(REAL, 'bert_toy_optimized.onnx'), 'MatMul_612', 'bert-head.onnx');
    const mlmHead = await runCli(['grad', bert, '--task', 'masked-lm', '--data', mlm, '-o', out]);
    expect(mlmHead.stderr).toMatch(/its graph outputs are 'prediction_scores' \[batch, max_seq_len_in_batch, 99\], 'seq_relationship_score' \[batch, 2\]; pass --head prediction_scores$/m);
    const nspHead = await runCli(['grad', bert, '--task', 'seq-cls', '--data', nsp, '-o', out]);
    expect(nspHead.stderr).toMatch(/pass --head seq_relationship_score$/m);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('qa on a keras2onnx export (heads output_1/output_2, sequence fixed at 7) trains end to end', async () => {
    const adapted = await adapt(join(REAL, 'TFBertForQuestionAnswering.onnx'), 'bert\\.encoder\\.layer\\.2[23]\\.attention\\.self\\.(query|value)', 'qa.onnx');
    const art = join(dir, 'qa-artifacts');
    const a = await runCli(['artifacts', adapted, '--task', 'qa', '--head', 'output_1,output_2', '-o', art]);
    expect(a.code, a.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')) as { heads: string[]; labels: unknown; bounds: unknown; eval: { outputs: { predictions: string[] } } };
    expect(manifest.heads).toEqual(['output_1', 'output_2']);
    expect(manifest.labels).toEqual([{ name: 'start_positions', field: 'start_positions' }, { name: 'end_positions', field: 'end_positions' }]);
    expect(manifest.bounds).toEqual({ vocab: 20, positions: 7, tokenTypes: 2 });
    expect(manifest.eval.outputs.predictions).toEqual(['prediction', 'prediction.1']);
    const run = join(dir, 'qa-run');
    const t = await runCli(['train', art, '--data', qa, '--eval', qa, '-o', run, '--steps', '4', '--batch-size', '4', '--lr', '1e-2', '--ep', 'cpu', '--threads', '1']);
    expect(t.code, t.stderr).toBe(0);
    const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'eval_loss' in l);
    expect(evals).toHaveLength(2);
    expect(evals.every((e) => Number.isFinite(e.eval_loss) && e.eval_accuracy! >= 0 && e.eval_accuracy! <= 1)).toBe(true);
    const other = await runCli(['train', art, '--head', 'output_2,output_1', '--data', qa, '-o', join(dir, 'qa-other'), '--steps', '1']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/--head output_2,output_1 does not match the artifacts, which read output_1,output_2/);
  }, 120_000);
});

describe('targets that cannot reach the head are left out', () => {
  it('bert_toy_optimized (torch pre-training export): the pooler feeds only NSP, the MLM transform only MLM', async () => {
    const adapted = await adapt(join(REAL, 'bert_toy_optimized.onnx'), 'MatMul_612|bert.pooler.dense|MatMul_498', 'bert-two.onnx');
    const art = join(dir, 'mlm-artifacts');
    const a = await runCli(['artifacts', adapted, '--task', 'masked-lm', '--head', 'prediction_scores', '-o', art]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr.trim().split('\n')).toEqual([
      "warning: target 'bert.pooler.dense' does not reach the loss of --task masked-lm (head prediction_scores) through differentiable ops; it is left out of training",
    ]);
    const manifest = JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')) as { dropped: string[]; train: { inputs: { params: Array<{ name: string }> } } };
    expect(manifest.dropped.sort()).toEqual(['bert.pooler.dense.peanut_A.weight', 'bert.pooler.dense.peanut_B.weight']);
    expect(manifest.train.inputs.params.map((p) => p.name).some((n) => n.startsWith('bert.pooler'))).toBe(false);

    // NSP: the MLM transform (MatMul_612) is the one left out; training goes on.
    const run = join(dir, 'nsp-run');
    const t = await runCli(['train', adapted, '--task', 'seq-cls', '--head', 'seq_relationship_score', '--data', nsp, '-o', run, '--steps', '3', '--batch-size', '4', '--lr', '1e-2', '--ep', 'cpu']);
    expect(t.code, t.stderr).toBe(0);
    const warnings = t.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toEqual(["warning: target 'MatMul_612' does not reach the loss of --task seq-cls (head seq_relationship_score) through differentiable ops; it is left out of training"]);
    // Every θ is in the checkpoint; those left out are as injected, the others moved.
    const ckpt = readSafetensors(join(run, 'checkpoints', 'step-3.safetensors')).tensors;
    const model = loadModel(adapted);
    const initial = (k: string) => tensorToFloat32(graphOf(model).initializer.find((t) => t.name === k)!, model.baseDir);
    for (const k of ['MatMul_612.peanut_A.weight', 'MatMul_612.peanut_B.weight']) expect(Array.from(ckpt.get(k)!.data as Float32Array)).toEqual(Array.from(initial(k)));
    expect(Array.from(ckpt.get('bert.pooler.dense.peanut_B.weight')!.data as Float32Array)).not.toEqual(Array.from(initial('bert.pooler.dense.peanut_B.weight')));
    const m = await runCli(['merge', adapted, '--checkpoint', run, '-o', join(dir, 'bert-merged.onnx')]);
    expect(m.code, m.stderr).toBe(0);
  }, 120_000);

  it('a generated BertForPreTraining: the same by module name; EXPECTED FAILURE when no target reaches the head', async () => {
    const base = join(dir, 'bert-pretraining.onnx');
    saveModel(buildBert({ vocabSize: 99, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 32, maxPositions: 32, numLabels: 2, task: 'pretraining' }), base);
    const adapted = await adapt(base, 'query,value,pooler.dense,transform.dense', 'bert-pt.onnx');
    const g = await runCli(['grad', adapted, '--task', 'masked-lm', '--head', 'prediction_logits', '--data', mlm, '-o', join(dir, 'pt.safetensors')]);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stderr.trim()).toBe("warning: target 'bert.pooler.dense' does not reach the loss of --task masked-lm (head prediction_logits) through differentiable ops; it is left out of training");
    expect([...readSafetensors(join(dir, 'pt.safetensors')).tensors.keys()].filter((k) => k.includes('pooler'))).toEqual([]);
    const only = await adapt(base, 'transform.dense', 'bert-mlm-only.onnx');
    const out = join(dir, 'never.safetensors');
    const r = await runCli(['grad', only, '--task', 'seq-cls', '--head', 'seq_relationship_logits', '--data', nsp, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'error: none of the tweakers reaches the loss of --task seq-cls (head seq_relationship_logits) through differentiable ops; inject into layers on the path to that output (--targets), or pick the output they feed with --head',
    );
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});
