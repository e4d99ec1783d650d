/**
 * Evaluation metrics: the eval graph's loss equals the PyTorch loss of the fixture batch;
 * causal-LM eval loss is averaged over counted tokens across batches (so splitting the set into
 * batches of 2 + 1 gives the same number as one batch of 3), and perplexity = exp(eval_loss).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { writeSafetensors } from '../../src/node/safetensors-files.ts';
import { train } from '../../src/node/train.ts';

describe('evaluation', () => {
  it('causal-lm: token-weighted eval loss across uneven batches, perplexity = exp(loss)', async () => {
    const f = loadFixture('gpt2_tiny');
    const dir = tempDir();
    const cfg = f.config.tweaker.peft_equivalent_config;
    const init = join(dir, 'init.safetensors');
    writeSafetensors(init, f.peftTensors('init'));
    const adapted = join(dir, 'adapted.onnx');
    const inj = await runCli(['inject', f.modelPath, '-o', adapted, '--targets', cfg.target_modules.join(','), '--rank', String(cfg.r), '--scaling', String(cfg.scaling), '--init', init]);
    expect(inj.code, inj.stderr).toBe(0);
    const art = join(dir, 'art');
    expect((await runCli(['artifacts', adapted, '--task', 'causal-lm', '-o', art])).code).toBe(0);
    const batch = join(f.dir, 'batch.safetensors');
    const want = f.trajectory.loss_before_step[0]!;
    for (const batchSize of [3, 2]) {
      const r = await train(art, { data: batch, eval: batch, outDir: join(dir, `run${batchSize}`), steps: 1, batchSize, lr: 0, ep: 'cpu', threads: 1 });
      const e0 = r.evals[0]!;
      expect(e0.step).toBe(0);
      expect(e0.eval_examples).toBe(3);
      expect(Math.abs(e0.eval_loss - want) / want).toBeLessThan(1e-5);
      expect(e0.eval_perplexity).toBeCloseTo(Math.exp(e0.eval_loss), 10);
      expect(e0.eval_accuracy).toBeUndefined();
    }
  }, 60_000);

  it('BAD CALL - a task that does not match the artifacts is refused', async () => {
    const f = loadFixture('bert_tiny_opset14');
    const dir = tempDir();
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', f.modelPath, '-o', adapted, '--rank', '2'])).code).toBe(0);
    const art = join(dir, 'art');
    expect((await runCli(['artifacts', adapted, '--task', 'seq-cls', '-o', art])).code).toBe(0);
    const r = await runCli(['train', art, '--task', 'causal-lm', '--data', join(f.dir, 'batch.safetensors'), '-o', join(dir, 'run'), '--ep', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--task causal-lm does not match the artifacts, which were built for 'seq-cls'/);
    const r2 = await runCli(['train', adapted, '--data', join(f.dir, 'batch.safetensors'), '-o', join(dir, 'run2'), '--ep', 'cpu']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/--task is required/);
  }, 60_000);
});
