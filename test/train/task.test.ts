/**
 * End to end on a small task generated here: the bert_tiny fixture (pre-trained on a majority
 * vote) must learn the *inverted* vote through query/value tweakers alone. inject → artifacts →
 * train <dir> with --eval lowers the eval loss substantially; merge --checkpoint <run dir> gives a
 * plain model whose logits equal the adapted model's (with the trained θ) within 1e-5. The same
 * examples given as `text` with a tokenizer.json train identically to the pre-tokenized ones.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { loadFixture, maxAbsDiff } from '../helpers/fixtures.ts';
import { Random } from '../../src/util/random.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { setTensorBytes } from '../../src/onnx/tensor.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';

/** label = 1 iff at most half of the content tokens are < 34 (the fixture model predicts the opposite). */
function makeTask(n: number, seed: number): Array<{ ids: number[]; label: number }> {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => {
    const len = 5 + rng.int(8);
    const content = Array.from({ length: len }, () => 3 + rng.int(61));
    const low = content.filter((x) => x < 34).length;
    return { ids: [1, ...content, 2], label: low * 2 > len ? 0 : 1 };
  });
}

const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function tokenizerJson(): object {
  const vocab: Record<string, number> = { '[PAD]': 0, '[CLS]': 1, '[SEP]': 2 };
  for (let i = 3; i < 64; i++) vocab[`w${i}`] = i;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '[PAD]'), special(1, '[CLS]'), special(2, '[SEP]')],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 2], cls: ['[CLS]', 1] },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '[PAD]' },
  };
}

describe('training on a generated task', () => {
  it('lowers eval loss substantially; merge of the trained θ matches the adapted model within 1e-5', async () => {
    const dir = tempDir();
    const f = loadFixture('bert_tiny_opset14');
    const train = makeTask(192, 1);
    const evalSet = makeTask(96, 2);
    writeFileSync(join(dir, 'train.jsonl'), jsonl(train.map((e) => ({ input_ids: e.ids, labels: e.label }))));
    writeFileSync(join(dir, 'eval.jsonl'), jsonl(evalSet.map((e) => ({ input_ids: e.ids, label: e.label }))));
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', f.modelPath, '-o', adapted, '--rank', '4', '--seed', '1'])).code).toBe(0);
    const art = join(dir, 'artifacts');
    const a = await runCli(['artifacts', adapted, '--task', 'seq-cls', '-o', art]);
    expect(a.code, a.stderr).toBe(0);
    for (const file of ['train.onnx', 'eval.onnx', 'checkpoint.safetensors', 'manifest.json']) expect(existsSync(join(art, file))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')) as Record<string, any>;
    expect(manifest.task).toBe('seq-cls');
    expect(manifest.peanut.config).toMatchObject({ method: 'peanut', r: 4, depth: 0, act: 'relu' });
    expect(manifest.versions['onnxruntime-node']).toMatch(/^\d+\.\d+/);
    expect(manifest.train.inputs.data.map((d: { name: string }) => d.name).sort()).toEqual(['attention_mask', 'input_ids', 'labels', 'token_type_ids']);
    expect(readSafetensors(join(art, 'checkpoint.safetensors')).metadata.step).toBe('0');

    const run = join(dir, 'run');
    const t = await runCli(['train', art, '--data', join(dir, 'train.jsonl'), '--eval', join(dir, 'eval.jsonl'), '-o', run, '--epochs', '3', '--batch-size', '16', '--lr', '1e-2', '--eval-every', '12', '--ep', 'cpu', '--threads', '1']);
    expect(t.code, t.stderr).toBe(0);
    const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'eval_loss' in l);
    expect(evals[0]!.step).toBe(0);
    expect(evals.at(-1)!.step).toBe(36);
    // measured: 2.3 → ~0.12, accuracy 0 → 1
    expect(evals.at(-1)!.eval_loss!).toBeLessThan(0.25 * evals[0]!.eval_loss!);
    expect(evals.at(-1)!.eval_accuracy!).toBeGreaterThan(0.9);
    expect(evals[0]!.eval_accuracy).toBeLessThan(0.2);

    // merge the trained θ and compare with the adapted model carrying the same θ
    const merged = join(dir, 'merged.onnx');
    const m = await runCli(['merge', adapted, '-o', merged, '--checkpoint', run]);
    expect(m.code, m.stderr).toBe(0);
    const trained = readSafetensors(join(run, 'checkpoints', 'step-36.safetensors')).tensors;
    const model = loadModel(adapted);
    let replaced = 0;
    for (const init of graphOf(model).initializer) {
      const v = trained.get(init.name);
      if (v) {
        setTensorBytes(init, new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength));
        replaced++;
      }
    }
    expect(replaced).toBe(8);
    const adaptedTrained = join(dir, 'adapted-trained.onnx');
    saveModel(model, adaptedTrained);
    const B = 4;
    const T = 9;
    const ids = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T === 0 ? 1 : 3 + ((i * 7) % 60)));
    const feeds = {
      input_ids: new ort.Tensor('int64', ids, [B, T]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, () => 1n), [B, T]),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * T), [B, T]),
    };
    const run1 = async (path: string) => {
      const { session } = await createSession(path, { ep: 'cpu', threads: 1 });
      const out = await session.run(feeds);
      await session.release();
      return out.logits!.data as Float32Array;
    };
    const [la, lm, lb] = [await run1(adaptedTrained), await run1(merged), await run1(f.modelPath)];
    expect(maxAbsDiff(la, lm)).toBeLessThan(1e-5);
    expect(maxAbsDiff(la, lb)).toBeGreaterThan(0.5); // training really changed the model
  }, 120_000);

  it('`text` examples tokenized with --tokenizer train exactly like the pre-tokenized ones', async () => {
    const dir = tempDir();
    const f = loadFixture('bert_tiny_opset14');
    const rows = makeTask(24, 3);
    writeFileSync(join(dir, 'ids.jsonl'), jsonl(rows.map((e) => ({ input_ids: e.ids, labels: e.label }))));
    writeFileSync(join(dir, 'text.jsonl'), jsonl(rows.map((e) => ({ text: e.ids.slice(1, -1).map((x) => `w${x}`).join(' '), label: e.label }))));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', f.modelPath, '-o', adapted, '--rank', '4'])).code).toBe(0);
    const args = (data: string, out: string) => ['train', adapted, '--task', 'seq-cls', '--data', join(dir, data), '-o', join(dir, out), '--steps', '4', '--batch-size', '8', '--seed', '5', '--ep', 'cpu', '--threads', '1'];
    const r1 = await runCli(args('ids.jsonl', 'r1'));
    const r2 = await runCli([...args('text.jsonl', 'r2'), '--tokenizer', join(dir, 'tokenizer.json')]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    const losses = (run: string) => readFileSync(join(dir, run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(losses('r2')).toEqual(losses('r1'));
    const r3 = await runCli(args('text.jsonl', 'r3'));
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/has 'text' but no 'input_ids'; pass --tokenizer/);
  }, 120_000);
});
