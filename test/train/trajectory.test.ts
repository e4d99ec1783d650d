/**
 * The PyTorch oracle: from each fixture's `init.safetensors`, five AdamW steps on the fixture batch
 * must reproduce `trajectory.json` (loss before each step, within 1e-5 relative) and
 * `trajectory_final.safetensors` (θ after the fifth step, within 1e-4 relative per tensor:
 * max|got − want| / max|want|). Driven through the CLI exactly as a user would:
 *   inject --init → train --steps 5 --batch-size 3 --lr 1e-2 --weight-decay 0.01
 *                           --schedule constant --warmup 0 --no-shuffle
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURE_NAMES, loadFixture, relError } from '../helpers/fixtures.ts';
import { readSafetensors, writeSafetensors } from '../../src/node/safetensors-files.ts';

const TASK: Record<string, string> = { sequence_classification: 'seq-cls', causal_lm: 'causal-lm' };

/** Errors measured, printed once at the end for the report. */
const measured: string[] = [];

describe('5-step AdamW trajectory vs PyTorch', () => {
  for (const name of FIXTURE_NAMES) {
    it(`${name}: losses within 1e-5 and final θ within 1e-4 (relative)`, async () => {
      const f = loadFixture(name);
      const dir = tempDir();
      const cfg = f.config.tweaker.peft_equivalent_config;
      const init = join(dir, 'init.safetensors');
      writeSafetensors(init, f.peftTensors('init'));
      const adapted = join(dir, 'adapted.onnx');
      const inj = await runCli([
        'inject', f.modelPath, '-o', adapted, '--targets', cfg.target_modules.join(','), '--rank', String(cfg.r), '--depth', String(cfg.depth),
        '--act', cfg.act_fn, '--scaling', String(cfg.scaling), '--init', init,
      ]);
      expect(inj.code, inj.stderr).toBe(0);
      const run = join(dir, 'run');
      const task = TASK[f.config.task.type]!;
      const tr = await runCli([
        'train', adapted, '--task', task, '--data', join(f.dir, 'batch.safetensors'), '-o', run, '--steps', '5', '--batch-size', '3',
        '--lr', '1e-2', '--weight-decay', '0.01', '--schedule', 'constant', '--warmup', '0', '--no-shuffle', '--ep', 'cpu', '--threads', '1',
      ]);
      expect(tr.code, tr.stderr).toBe(0);

      const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; lr: number });
      expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4, 5]);
      const want = f.trajectory.loss_before_step;
      const lossErr = Math.max(...lines.map((l, i) => Math.abs(l.loss - want[i]!) / Math.abs(want[i]!)));
      for (const l of lines) expect(l.lr).toBe(1e-2);
      // The gradient norm logged before each update matches PyTorch's too.
      const wantNorm = f.trajectory.grad_global_l2_norm_before_step;
      const normErr = Math.max(...lines.map((l, i) => Math.abs((l as unknown as { grad_norm: number }).grad_norm - wantNorm[i]!) / wantNorm[i]!));
      expect(normErr).toBeLessThan(1e-3);

      const final = readSafetensors(join(run, 'checkpoints', 'step-5.safetensors')).tensors;
      const expected = f.peftTensors('trajectory_final');
      let worst = 0;
      let worstKey = '';
      for (const [key, t] of expected) {
        const got = final.get(key);
        expect(got, `checkpoint lacks ${key}`).toBeDefined();
        expect(got!.shape).toEqual(t.shape);
        const e = relError(got!.data as Float32Array, t.data as Float32Array);
        if (e > worst) [worst, worstKey] = [e, key];
        expect(final.get(`adam.m.${key}`)).toBeDefined();
        expect(final.get(`adam.v.${key}`)).toBeDefined();
      }
      measured.push(`${name}: loss rel err max ${lossErr.toExponential(2)}; grad-norm rel err max ${normErr.toExponential(2)}; final θ rel err max ${worst.toExponential(2)} (${worstKey})`);
      console.info(measured.at(-1));
      expect(lossErr).toBeLessThan(1e-5);
      expect(worst).toBeLessThan(1e-4);
    }, 120_000);
  }
});
