/**
 * `peanut-onnx demo` end to end on a shortened run: inject → train → merge → evaluate on the
 * shipped model and data, files written, numbers reported, merged model equal to the adapted one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_ASSETS, DEMO_FILES, runDemo } from '../../src/cli/demo/run-demo.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { runCli, tempDir } from '../helpers/cli.ts';

describe('runDemo (library)', () => {
  it('shortened run: writes every file, reports accuracy before/after, merged = adapted within 1e-5', async () => {
    const dir = tempDir('peanut-demo-');
    const r = await runDemo({ outDir: dir, steps: 15, timingRuns: 2, threads: 1 });
    for (const f of [r.files.adapted, r.files.merged, r.files.report, r.files.checkpoint, r.files.metrics]) expect(existsSync(f), f).toBe(true);
    expect(r.files.adapted).toBe(join(dir, DEMO_FILES.adapted));
    expect(r.steps).toBe(15);
    for (const a of [r.before.accuracy, r.after.accuracy, r.mergedAccuracy]) {
      expect(a).toBeGreaterThanOrEqual(0);
      expect(a).toBeLessThanOrEqual(1);
    }
    // the merged model predicts what the adapted model with trained θ predicts
    expect(r.mergedAccuracy).toBe(r.after.accuracy);
    expect(r.mergedVsAdaptedMaxDiff).toBeLessThanOrEqual(1e-5);
    // 2 layers × (query, value), PEANuT r 8: 2·out·r = 1024 each; bert-tiny has 87,874 float parameters
    expect(r.targets).toHaveLength(4);
    expect(r.trainableParams).toBe(4 * 2 * 64 * 8);
    expect(r.modelParams).toBe(87_874);
    expect(r.trainablePercent).toBeCloseTo((100 * 4096) / 87_874, 2);
    expect(r.inference.ratio).toBeGreaterThan(0);
    const report = JSON.parse(readFileSync(r.files.report, 'utf8')) as typeof r;
    expect(report.after.accuracy).toBe(r.after.accuracy);
    // the merged model is the original graph, node for node
    const original = graphOf(loadModel(DEMO_ASSETS.model));
    const merged = graphOf(loadModel(r.files.merged));
    expect(merged.node.map((n) => n.opType)).toEqual(original.node.map((n) => n.opType));
    expect(merged.initializer.map((t) => t.name)).toEqual(original.initializer.map((t) => t.name));
  }, 60_000);
});

describe('peanut-onnx demo (CLI)', () => {
  it('prints accuracies, parameter budget, merge check, timing and the files written', async () => {
    const dir = tempDir('peanut-demo-cli-');
    const out = join(dir, 'out');
    const r = await runCli(['demo', '-o', out, '--steps', '5', '--threads', '1']);
    expect(r.stderr).not.toMatch(/Error|error:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/eval accuracy\s+\d+\.\d% before\s+→\s+\d+\.\d% after 5 steps/);
    expect(r.stdout).toMatch(/trainable params\s+4,096 of 87,874 \(4\.66% of the model\)/);
    expect(r.stdout).toMatch(/merged vs adapted\s+max \|Δlogit\| = /);
    expect(r.stdout).toMatch(/merged \/ original = \d+\.\d\d/);
    expect(r.stdout).toContain(join(out, 'merged.onnx'));
    expect(r.stderr).toMatch(/\[1\/4\] inject/);
    // a second run into the same directory replaces the earlier demo's files
    const again = await runCli(['demo', '-o', out, '--steps', '2', '--threads', '1', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps).toBe(2);
  }, 60_000);

  it('runs as `node bin/peanut-onnx.js demo` (what `npm run demo` does) from another working directory', () => {
    const cwd = tempDir('peanut-demo-bin-');
    const bin = resolve(import.meta.dirname, '../../bin/peanut-onnx.js');
    const r = spawnSync(process.execPath, [bin, 'demo', '--steps', '3', '--threads', '1'], { cwd, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/eval accuracy .* after 3 steps/);
    expect(r.stdout).toContain('peanut-demo/merged.onnx');
    expect(existsSync(join(cwd, 'peanut-demo', 'merged.onnx'))).toBe(true);
  }, 60_000);

  it('EXPECTED FAILURE - refuses a directory holding other files, and --steps 0', async () => {
    const dir = tempDir('peanut-demo-foreign-');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const r = await runCli(['demo', '-o', dir, '--steps', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already holds other files \(notes\.txt\)/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    const bad = await runCli(['demo', '-o', dir, '--steps', '0']);
    expect(bad.code).toBe(2);
  });
});
