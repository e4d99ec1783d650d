/**
 * What a new user meets on the command line: PEFT's defaults and its trainable-parameter line,
 * `--json` summaries, a trained but unmerged model from `inject --init <run dir>`, choices listed
 * in help, and no terminal colour codes in output that is not a terminal.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.ts';
import { CHOICES } from '../../src/choices.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { loadCheckpoint, latestCheckpoint } from '../../src/node/run-dir.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { tensorToFloat32 } from '../../src/onnx/tensor.ts';
import { readAdapterMeta } from '../../src/adapter/adapter-meta.ts';
import { runCli, tempDir } from '../helpers/cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'graphs', 'bert-tiny.onnx');
const TRAIN = join(ROOT, 'graphs', 'demo', 'train.jsonl');
const EVAL = join(ROOT, 'graphs', 'demo', 'eval.jsonl');
// The shipped model: 87,874 parameters; rank 8 on query,value of 2 layers of 64 → 64 adds 4 × 2·64·8.
const BASE = 87_874;
const ADDED = 4 * 2 * 64 * 8;

describe('the newcomer path', () => {
  it("prints PEFT's trainable-parameter line, and --json gives the same numbers", async () => {
    const dir = tempDir('peanut-new-');
    const text = await runCli(['inject', MODEL, '-o', join(dir, 'a.onnx'), '--rank', '8']);
    expect(text.code, text.stderr).toBe(0);
    // print_trainable_parameters: trainable of (base + adapter)
    expect(text.stdout).toContain(`trainable params: ${ADDED.toLocaleString('en-US')} || all params: ${(BASE + ADDED).toLocaleString('en-US')} || trainable%: ${((100 * ADDED) / (BASE + ADDED)).toFixed(4)}`);
    const json = await runCli(['inject', MODEL, '-o', join(dir, 'b.onnx'), '--rank', '8', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const summary = JSON.parse(json.stdout) as { trainableParams: number; allParams: number; layers: unknown[]; method: { r: number } };
    expect(summary).toMatchObject({ trainableParams: ADDED, allParams: BASE + ADDED, method: { r: 8 } });
    expect(summary.layers).toHaveLength(4);
  });

  it("LoRA takes PEFT's defaults: r 8, lora_alpha 8", async () => {
    const dir = tempDir('peanut-new-');
    const r = await runCli(['inject', MODEL, '-o', join(dir, 'lora.onnx'), '--method', 'lora']);
    expect(r.code, r.stderr).toBe(0);
    expect(readAdapterMeta(loadModel(join(dir, 'lora.onnx')))!.config).toEqual({ method: 'lora', r: 8, alpha: 8 });
  });

  it('inject --init <run dir> writes the trained, unmerged model; train and merge --json summarise', async () => {
    const dir = tempDir('peanut-new-');
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', MODEL, '-o', adapted, '--rank', '4'])).code).toBe(0);
    const run = join(dir, 'run');
    const t = await runCli(['train', adapted, '--task', 'seq-cls', '--data', TRAIN, '--eval', EVAL, '-o', run, '--steps', '3', '--batch-size', '8', '--lr', '1e-2', '--threads', '1', '--json']);
    expect(t.code, t.stderr).toBe(0);
    const trained = JSON.parse(t.stdout) as { step: number; totalSteps: number; checkpoint: string; evals: Array<{ step: number }> };
    expect(trained).toMatchObject({ step: 3, totalSteps: 3 });
    expect(trained.evals.map((e) => e.step)).toEqual([0, 3]);
    // No ONNX Runtime warning with terminal colour codes in non-terminal output.
    expect(t.stderr).not.toMatch(/\x1b\[/);

    const unmerged = join(dir, 'trained.onnx');
    const i = await runCli(['inject', MODEL, '-o', unmerged, '--rank', '4', '--init', run]);
    expect(i.code, i.stderr).toBe(0);
    const state = loadCheckpoint(latestCheckpoint(run)!.path);
    const inits = new Map(graphOf(loadModel(unmerged)).initializer.map((x) => [x.name, x]));
    for (const [key, t] of state.params) expect(Array.from(tensorToFloat32(inits.get(key)!, dir))).toEqual(Array.from(t.data as Float32Array));

    const m = await runCli(['merge', adapted, '-o', join(dir, 'merged.onnx'), '--checkpoint', run, '--json']);
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ layers: expect.arrayContaining(['bert.encoder.layer.0.attention.self.query']), paramsFrom: latestCheckpoint(run)!.path });
  }, 60_000);

  it('--task help lists the tasks; the version is the package version', async () => {
    const help = await runCli(['train', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain(`(${CHOICES.tasks.join(', ')})`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect((await runCli(['--version'])).stdout.trim()).toBe(pkg.version);
  });
});
