/**
 * Exact resume on a real adapted model (the GPT-2 fixture, causal LM, shuffled batches of 2 over
 * 3 examples so epochs roll over mid-run, cosine schedule, clipping): a 7-step run stopped after
 * step 3 and continued with --resume equals 7 uninterrupted steps,
 * bit for bit, with ONNX Runtime's default thread count.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { train } from '../../src/node/train.ts';

describe('resume on a real model', () => {
  it('gpt2_tiny: stopped after 3 of 7 steps, then --resume, equals 7 steps in one go', async () => {
    const f = loadFixture('gpt2_tiny');
    const dir = tempDir();
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', f.modelPath, '-o', adapted, '--targets', 'c_attn,c_proj', '--rank', '4', '--depth', '1', '--act', 'gelu'])).code).toBe(0);
    const art = join(dir, 'art');
    expect((await runCli(['artifacts', adapted, '--task', 'causal-lm', '-o', art])).code).toBe(0);
    const data = join(f.dir, 'batch.safetensors');
    const args = (out: string, steps: number) => ['train', art, '--data', data, '-o', join(dir, out), '--steps', String(steps), '--batch-size', '2', '--lr', '5e-3', '--schedule', 'cosine', '--warmup', '2', '--grad-clip', '0.5', '--seed', '11', '--ep', 'cpu'];
    const full = await runCli(args('full', 7));
    expect(full.code, full.stderr).toBe(0);
    // The 7-step run stopped after step 3 (as Ctrl-C does), then continued from the CLI.
    const abort = new AbortController();
    const part = await train(art, {
      data, outDir: join(dir, 'part'), steps: 7, batchSize: 2, lr: 5e-3, schedule: 'cosine', warmup: 2, gradClip: 0.5, seed: 11, ep: 'cpu',
      signal: abort.signal, onEvent: (e) => e.type === 'step' && e.step === 3 && abort.abort(),
    });
    expect(part.interrupted && part.step === 3).toBe(true);
    const b = await runCli([...args('part', 7), '--resume']);
    expect(b.code, b.stderr).toBe(0);
    const x = readSafetensors(join(dir, 'full', 'checkpoints', 'step-7.safetensors')).tensors;
    const y = readSafetensors(join(dir, 'part', 'checkpoints', 'step-7.safetensors')).tensors;
    expect([...y.keys()].sort()).toEqual([...x.keys()].sort());
    for (const [k, t] of x) {
      const u = y.get(k)!;
      expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
    }
  }, 120_000);
});
