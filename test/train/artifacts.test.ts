/**
 * The artifact directory is self-describing: manifest names match the graphs' actual inputs and
 * outputs, θ are inputs (never initializers) of both graphs, and `train <dir>` computes exactly
 * what `train <adapted.onnx>` computes from the same model.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import type { Manifest } from '../../src/train/manifest.ts';

describe('peanut-onnx artifacts', () => {
  it('writes graphs whose I/O the manifest describes; train <dir> == train <adapted.onnx>', async () => {
    const f = loadFixture('bert_tiny_opset14');
    const dir = tempDir();
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', f.modelPath, '-o', adapted, '--rank', '3', '--depth', '1'])).code).toBe(0);
    const art = join(dir, 'art');
    const r = await runCli(['artifacts', adapted, '--task', 'seq-cls', '-o', art]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/train\.onnx, eval\.onnx, checkpoint\.safetensors, manifest\.json \(task seq-cls, 16 trainable tensors/);
    const m = JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8')) as Manifest;
    const train = graphOf(loadModel(join(art, 'train.onnx')));
    const evalG = graphOf(loadModel(join(art, 'eval.onnx')));
    const params = m.train.inputs.params.map((p) => p.name);
    expect(params.length).toBe(16); // 4 targets × (A, enc0, dec0, B)
    const inits = new Set([...train.initializer, ...evalG.initializer].map((t) => t.name));
    for (const p of params) expect(inits.has(p), `${p} must not be an initializer`).toBe(false);
    const trainInputs = train.input.map((v) => v.name).sort();
    const h = m.train.inputs.hyperparameters;
    const expectedInputs = [
      ...m.train.inputs.data.map((d) => d.name),
      ...params,
      ...Object.values(m.train.inputs.moments.m),
      ...Object.values(m.train.inputs.moments.v),
      h.stepSize, h.biasCorrection2Sqrt, h.decay, h.beta1, h.oneMinusBeta1, h.beta2, h.oneMinusBeta2, h.eps, h.maxGradNorm,
    ].sort();
    expect(trainInputs).toEqual(expectedInputs);
    const o = m.train.outputs;
    expect(train.output.map((v) => v.name).sort()).toEqual(
      [o.loss, o.gradNorm, ...Object.values(o.params), ...Object.values(o.moments.m), ...Object.values(o.moments.v)].sort(),
    );
    expect(evalG.input.map((v) => v.name).sort()).toEqual([...m.eval.inputs.data.map((d) => d.name), ...params].sort());
    expect(evalG.output.map((v) => v.name)).toEqual([m.eval.outputs.loss, m.eval.outputs.prediction]);
    expect(m.hyperparameters).toMatchObject({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    expect(m.versions['peanut-onnx']).toMatch(/^\d+\.\d+\.\d+/);

    const ck = readSafetensors(join(art, 'checkpoint.safetensors'));
    expect(ck.metadata.step).toBe('0');
    for (const p of params) {
      expect(ck.tensors.has(p)).toBe(true);
      expect(Array.from(ck.tensors.get(`adam.m.${p}`)!.data as Float32Array).every((x) => x === 0)).toBe(true);
    }

    const args = ['--data', join(f.dir, 'batch.safetensors'), '--steps', '3', '--batch-size', '2', '--lr', '1e-2', '--ep', 'cpu', '--threads', '1'];
    const a = await runCli(['train', art, ...args, '-o', join(dir, 'r1')]);
    const b = await runCli(['train', adapted, '--task', 'seq-cls', ...args, '-o', join(dir, 'r2')]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const x = readSafetensors(join(dir, 'r1', 'checkpoints', 'step-3.safetensors')).tensors;
    const y = readSafetensors(join(dir, 'r2', 'checkpoints', 'step-3.safetensors')).tensors;
    for (const [k, t] of x) expect(Buffer.from(y.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
  }, 120_000);

  it('BAD CALL - artifacts of manifest format 1 (float64 optimizer inputs): one line saying how to rebuild; the run continues on the rebuilt ones', async () => {
    const f = loadFixture('bert_tiny_opset14');
    const dir = tempDir();
    const adapted = join(dir, 'adapted.onnx');
    expect((await runCli(['inject', f.modelPath, '-o', adapted, '--rank', '2'])).code).toBe(0);
    const art = join(dir, 'art');
    expect((await runCli(['artifacts', adapted, '--task', 'seq-cls', '-o', art])).code).toBe(0);
    const args = ['--data', join(f.dir, 'batch.safetensors'), '--batch-size', '2', '--lr', '1e-2', '--ep', 'cpu', '--threads', '1'];
    const run = join(dir, 'run');
    expect((await runCli(['train', art, ...args, '--steps', '2', '-o', run])).code).toBe(0);

    const manifestPath = join(art, 'manifest.json');
    const current = readFileSync(manifestPath, 'utf8');
    writeFileSync(manifestPath, current.replace('"peanut-onnx-artifacts/2"', '"peanut-onnx-artifacts/1"'));
    const old = await runCli(['train', art, ...args, '--steps', '3', '--resume', '-o', run]);
    expect(old.code).toBe(1);
    expect(old.stderr.trim().split('\n')).toHaveLength(1);
    expect(old.stderr).toContain(`peanut-onnx artifacts ${adapted} --task seq-cls -o ${art}`);

    // Rebuilt as the message says, the run's checkpoints (unchanged format) continue.
    expect((await runCli(['artifacts', adapted, '--task', 'seq-cls', '-o', art])).code).toBe(0);
    const resumed = await runCli(['train', art, ...args, '--steps', '3', '--resume', '-o', run]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readSafetensors(join(run, 'checkpoints', 'step-3.safetensors')).metadata.step).toBe('3');
  }, 120_000);
});
