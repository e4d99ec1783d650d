/**
 * `peanut-onnx train` as a user runs it: a process killed between checkpoints (SIGKILL) or
 * interrupted with Ctrl-C (SIGINT, exit 130) or SIGTERM (exit 143) continues with --resume to the
 * same θ as an uninterrupted run;
 * `--ep cuda` without the CUDA provider fails with the install hint (exit 1).
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, tempDir } from '../helpers/cli.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { toyDir, W_KEY, C_KEY } from './toy.ts';

const BIN = fileURLToPath(new URL('../../bin/peanut-onnx.js', import.meta.url));

function latestStep(run: string): number {
  const dir = join(run, 'checkpoints');
  if (!existsSync(dir)) return -1;
  return Math.max(-1, ...readdirSync(dir).map((f) => Number(/^step-(\d+)\.safetensors$/.exec(f)?.[1] ?? -1)));
}

/** Starts the CLI in a child process and sends `signal` once a checkpoint at or after `afterStep` exists. */
function runAndSignal(args: string[], run: string, afterStep: number, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', () => {});
    const timer = setInterval(() => {
      if (latestStep(run) >= afterStep) {
        clearInterval(timer);
        child.kill(signal);
      }
    }, 5);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      clearInterval(timer);
      resolve({ code, signal: sig, stderr });
    });
  });
}

const bytes = (path: string, key: string) => {
  const d = readSafetensors(path).tensors.get(key)!.data;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex');
};

describe('peanut-onnx train (CLI)', () => {
  const STEPS = 1500;
  const common = (d: { artifacts: string; train: string }, run: string) => [
    'train', d.artifacts, '--data', d.train, '-o', run, '--steps', String(STEPS), '--batch-size', '5', '--lr', '0.01',
    '--schedule', 'linear', '--warmup', '10', '--seed', '7', '--save-every', '200', '--ep', 'cpu', '--threads', '1',
  ];

  it('a run killed between checkpoints (SIGKILL) resumes to the same θ as an uninterrupted run', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const full = join(root, 'full');
    const killed = join(root, 'killed');
    const r1 = await runCli(common(d, full));
    expect(r1.code, r1.stderr).toBe(0);

    const k = await runAndSignal(common(d, killed), killed, 200, 'SIGKILL');
    expect(k.signal).toBe('SIGKILL');
    const at = latestStep(killed);
    expect(at).toBeGreaterThanOrEqual(200);
    expect(at).toBeLessThan(STEPS); // killed mid-run
    const r2 = await runCli([...common(d, killed), '--resume']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(new RegExp(`resuming from .*step-${at}\\.safetensors at step ${at}`));
    const a = join(full, 'checkpoints', `step-${STEPS}.safetensors`);
    const b = join(killed, 'checkpoints', `step-${STEPS}.safetensors`);
    for (const key of [W_KEY, C_KEY, `adam.m.${W_KEY}`, `adam.v.${C_KEY}`]) expect(bytes(b, key)).toBe(bytes(a, key));
    // The metrics log has each step once (lines after the resumed checkpoint were dropped and redone).
    const steps = readFileSync(join(killed, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number }).filter((l) => l.loss !== undefined).map((l) => l.step);
    expect(steps).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  }, 60_000);

  it('Ctrl-C (SIGINT) saves a checkpoint, exits 130 (so `train && merge` does not merge a partial run), and --resume finishes the run', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    const k = await runAndSignal(common(d, run), run, 200, 'SIGINT');
    expect(k.code).toBe(130);
    expect(k.stderr).toMatch(/interrupted at step (\d+)\/1500; checkpoint .*step-\1\.safetensors; continue with the same command plus --resume/);
    const stoppedAt = Number(/interrupted at step (\d+)/.exec(k.stderr)![1]);
    expect(latestStep(run)).toBe(stoppedAt);
    const r = await runCli([...common(d, run), '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(latestStep(run)).toBe(STEPS);
  }, 60_000);

  it('SIGTERM stops like Ctrl-C: checkpoint saved, exit 143, --resume continues', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    const k = await runAndSignal(common(d, run), run, 200, 'SIGTERM');
    expect(k.signal).toBe(null);
    expect(k.code).toBe(143);
    expect(k.stderr).toMatch(/terminated: finishing the current step and saving a checkpoint/);
    const stoppedAt = Number(/interrupted at step (\d+)\/1500/.exec(k.stderr)![1]);
    expect(latestStep(run)).toBe(stoppedAt);
    expect(existsSync(join(run, '.lock'))).toBe(false);
    const r = await runCli([...common(d, run), '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(latestStep(run)).toBe(STEPS);
  }, 60_000);

  it('EXPECTED FAILURE - --ep cuda without the CUDA provider exits 1 with the install hint', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const r = await runCli(['train', d.artifacts, '--data', d.train, '-o', join(root, 'run'), '--steps', '1', '--ep', 'cuda']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the CUDA execution provider is not installed: reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12.*or use --ep cpu/);
  });

  it('--ep auto says which provider it chose', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const r = await runCli(['train', d.artifacts, '--data', d.train, '-o', join(root, 'run'), '--steps', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/execution provider: cpu \(auto: CUDA not available\)/);
    expect(r.stdout).toMatch(/trained 2 steps on cpu/);
  });

  it('BAD CALL - usage errors exit 2', async () => {
    expect((await runCli(['train', 'x', '--data', 'y', '-o', 'z', '--schedule', 'step'])).code).toBe(2);
    expect((await runCli(['train', 'x', '--data', 'y', '-o', 'z', '--steps', '3', '--epochs', '2'])).code).toBe(2);
    expect((await runCli(['train', 'x', '-o', 'z'])).code).toBe(2);
  });
});
