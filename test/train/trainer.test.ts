/**
 * The training loop on a toy gradient model (hand-written gradients): convergence, exact resume,
 * the NaN stop, and execution-provider selection. The autodiff is not involved, so these run in
 * well under a second each.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { train, type TrainEvent } from '../../src/node/train.ts';
import { loadCheckpoint } from '../../src/node/run-dir.ts';
import { PeanutError } from '../../src/errors.ts';
import type { SafeTensor } from '../../src/formats/safetensors.ts';
import { tempDir } from '../helpers/cli.ts';
import { toyDir, W_KEY, C_KEY } from './toy.ts';

const base = { threads: 1, ep: 'cpu' as const, batchSize: 8, lr: 0.05, schedule: 'cosine' as const, warmup: 2 };

/** The raw bytes of a float32 tensor, for bit-for-bit comparisons. */
function bits(t: SafeTensor | undefined): string {
  const d = t!.data;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex');
}

describe('train() on a toy regression', () => {
  it('lowers the eval loss substantially and logs every step', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const r = await train(d.artifacts, { ...base, data: d.train, eval: d.eval, outDir: join(root, 'run'), epochs: 6, lr: 0.3 });
    expect(r.step).toBe(48);
    expect(r.evals[0]!.step).toBe(0);
    const first = r.evals[0]!.eval_loss;
    const last = r.evals.at(-1)!.eval_loss;
    expect(last).toBeLessThan(first * 0.1);
    const lines = readFileSync(r.metricsLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const steps = lines.filter((l) => 'loss' in l);
    expect(steps.map((l) => l.step)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    for (const l of steps) expect(Object.keys(l)).toEqual(expect.arrayContaining(['step', 'loss', 'lr', 'grad_norm']));
    // HF cosine with 2 warmup steps: lr(1) = 0, lr(2) = lr/2, lr(3) = lr
    expect(steps[0]!.lr).toBe(0);
    expect(steps[1]!.lr).toBeCloseTo(0.15, 12);
    expect(steps[2]!.lr).toBeCloseTo(0.3, 12);
    expect(steps[3]!.lr).toBeCloseTo(0.3 * 0.5 * (1 + Math.cos(Math.PI / 46)), 12); // (s − warmup)/(total − warmup) = 1/46
    expect(lines.filter((l) => 'eval_loss' in l).length).toBe(2);
    expect(existsSync(join(root, 'run', 'checkpoints', 'step-48.safetensors'))).toBe(true);
  });

  it('keeps only the newest checkpoints with keepCheckpoints, and resumes from the newest', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const opts = { ...base, data: d.train, steps: 20, batchSize: 6, saveEvery: 3 };
    const all = await train(d.artifacts, { ...opts, outDir: join(root, 'all') });
    // saves at 3, 6, …, 18 and the end (20)
    expect(readdirSync(join(root, 'all', 'checkpoints')).length).toBe(7);
    const kept = await train(d.artifacts, { ...opts, outDir: join(root, 'kept'), keepCheckpoints: 2 });
    expect(readdirSync(join(root, 'kept', 'checkpoints')).sort()).toEqual(['step-18.safetensors', 'step-20.safetensors']);
    for (const k of [W_KEY, C_KEY]) expect(bits(kept.params.get(k))).toBe(bits(all.params.get(k)));
  });

  it('resumes exactly: interrupted after 5 steps, then --resume, gives the same θ bit for bit', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const opts = { ...base, data: d.train, steps: 20, batchSize: 6, saveEvery: 7 };
    const full = await train(d.artifacts, { ...opts, outDir: join(root, 'full') });

    const abort = new AbortController();
    const onEvent = (e: TrainEvent) => {
      if (e.type === 'step' && e.step === 5) abort.abort();
    };
    const part = await train(d.artifacts, { ...opts, outDir: join(root, 'part'), signal: abort.signal, onEvent });
    expect(part.interrupted).toBe(true);
    expect(part.step).toBe(5);
    expect(readdirSync(join(root, 'part', 'checkpoints')).sort()).toEqual(['step-5.safetensors']);
    const resumed = await train(d.artifacts, { ...opts, outDir: join(root, 'part'), resume: true });
    expect(resumed.step).toBe(20);
    for (const k of [W_KEY, C_KEY]) expect(bits(resumed.params.get(k))).toBe(bits(full.params.get(k)));
    // The metrics log of the resumed run equals the uninterrupted one line for line (losses included).
    const strip = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(strip(resumed.metricsLog)).toEqual(strip(full.metricsLog));
  });

  it('resumes from a checkpoint taken mid-epoch with shuffling (save-every 7, kill after 10)', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const opts = { ...base, data: d.train, steps: 25, batchSize: 5, saveEvery: 7, seed: 3 };
    const full = await train(d.artifacts, { ...opts, outDir: join(root, 'full') });
    // Simulate a crash after step 10: the newest checkpoint is step 7; the run continues from it.
    const abort = new AbortController();
    await train(d.artifacts, { ...opts, outDir: join(root, 'crash'), signal: abort.signal, onEvent: (e) => e.type === 'step' && e.step === 10 && abort.abort() });
    const { rmSync } = await import('node:fs');
    rmSync(join(root, 'crash', 'checkpoints', 'step-10.safetensors'));
    const resumed = await train(d.artifacts, { ...opts, outDir: join(root, 'crash'), resume: true });
    const ck = loadCheckpoint(resumed.checkpoint);
    expect(ck.step).toBe(25);
    for (const k of [W_KEY, C_KEY]) expect(bits(resumed.params.get(k))).toBe(bits(full.params.get(k)));
  });

  it('EXPECTED FAILURE - a NaN loss stops the run with E_NON_FINITE and keeps the last good checkpoint', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    const err = await train(d.artifacts, { ...base, warmup: 0, schedule: 'constant', data: d.train, outDir: run, steps: 10, lr: 1e30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeanutError);
    expect((err as PeanutError).code).toBe('E_NON_FINITE');
    expect((err as PeanutError).message).toMatch(/at step \d+ .*last good state \(step \d+\) is in .*step-\d+\.safetensors/);
    const files = readdirSync(join(run, 'checkpoints'));
    expect(files.length).toBe(1);
    const ck = loadCheckpoint(join(run, 'checkpoints', files[0]!));
    for (const t of ck.params.values()) for (const x of t.data as Float32Array) expect(Number.isFinite(x)).toBe(true);
  });

  it('refuses to start over an existing run without --resume, and --resume with nothing to resume', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    await expect(train(d.artifacts, { ...base, data: d.train, outDir: run, resume: true, steps: 2 })).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND', message: /nothing to resume/ });
    await train(d.artifacts, { ...base, data: d.train, outDir: run, steps: 2 });
    await expect(train(d.artifacts, { ...base, data: d.train, outDir: run, steps: 2 })).rejects.toMatchObject({ code: 'E_OUTPUT_EXISTS', message: /--resume/ });
  });

  it('--ep auto falls back to the CPU and says so', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const events: TrainEvent[] = [];
    const r = await train(d.artifacts, { ...base, ep: 'auto', data: d.train, outDir: join(root, 'run'), steps: 1, onEvent: (e) => events.push(e) });
    // This machine has no CUDA provider library; on one that has it, auto picks cuda.
    const start = events.find((e) => e.type === 'start');
    expect(start).toMatchObject({ type: 'start', epRequested: 'auto', ep: r.ep });
  });
});
