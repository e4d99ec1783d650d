/**
 * PEFT adapters in and out: export-peft → import-peft reproduces every tweaker value bit for bit,
 * the files follow PEFT's names, shapes and config fields exactly, and bad adapters fail with one
 * clear message (exit 1) without writing anything.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { tensorBytes } from '../../src/onnx/tensor.ts';
import { inject } from '../../src/adapter/inject.ts';
import { readAdapterMeta } from '../../src/adapter/adapter-meta.ts';
import { writeTweakerState } from '../../src/node/tweaker-files.ts';
import { readSafetensors, writeSafetensors } from '../../src/node/safetensors-files.ts';
import { type SafeTensor } from '../../src/formats/safetensors.ts';
import { PEANUT_CONFIG_FIELDS, PEFT_VERSION } from '../../src/interop/peft/config.ts';
import { saveCheckpoint } from '../../src/node/run-dir.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { saveTwoDataFiles } from '../helpers/half.ts';

const f = loadFixture('bert_tiny_opset14');

/** Random, non-trivial values for every parameter (B nonzero), so a round trip is a real check. */
function randomize(state: Map<string, Float32Array>, seed: number): Map<string, SafeTensor> {
  let s = seed >>> 0;
  const out = new Map<string, SafeTensor>();
  for (const [k, v] of state) {
    const data = new Float32Array(v.length);
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[i] = (s / 2 ** 32 - 0.5) * 0.3;
    }
    out.set(k, { dtype: 'F32', shape: [], data });
  }
  return out;
}

/** An adapted bert-tiny with random θ (depth 1, gelu, scaling 0.5), written to `dir`. */
function adaptedFixture(dir: string, opts: { depth?: number; act?: string; scaling?: number; targets?: string } = {}) {
  const model = loadModel(f.modelPath);
  const cfg = { r: 4, depth: opts.depth ?? 1, act: opts.act ?? 'gelu', scaling: opts.scaling ?? 0.5, targets: opts.targets ?? 'query,value' };
  const first = inject(model, cfg);
  const values = randomize(first.state, 7);
  const init = new Map([...values].map(([k, t]) => [k, t.data as Float32Array]));
  const r = inject(model, { ...cfg, init });
  const path = join(dir, 'adapted.onnx');
  saveModel(r.model, path);
  return { path, result: r };
}

function thetaBytes(path: string): Map<string, Buffer> {
  const m = loadModel(path);
  const meta = readAdapterMeta(m)!;
  const names = new Set(meta.targets.flatMap((t) => t.params.map((p) => p.name)));
  return new Map(graphOf(m).initializer.filter((t) => names.has(t.name)).map((t) => [t.name, Buffer.from(tensorBytes(t, m.baseDir))]));
}

describe('export-peft', () => {
  it('writes PEFT names, shapes and every config field', async () => {
    const dir = tempDir('peft-export-');
    const { path, result } = adaptedFixture(dir);
    const out = join(dir, 'adapter');
    const r = await runCli(['export-peft', path, '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(config).sort()).toEqual([...PEANUT_CONFIG_FIELDS]);
    expect(config).toEqual({
      act_fn: 'gelu',
      auto_mapping: null,
      base_model_name_or_path: null,
      depth: 1,
      exclude_modules: null,
      inference_mode: true,
      init_weights: true,
      layers_pattern: null,
      layers_to_transform: null,
      modules_to_save: null,
      peft_type: 'PEANUT',
      peft_version: PEFT_VERSION,
      r: 4,
      revision: null,
      scaling: 0.5,
      target_modules: ['query', 'value'],
      task_type: null,
    });

    const { tensors } = readSafetensors(join(out, 'adapter_model.safetensors'));
    const hidden = 32; // bert-tiny fixture: hidden 32, 2 layers
    const expected = new Map<string, number[]>();
    for (const t of result.meta.targets) {
      const m = `base_model.model.${t.module}`;
      expect(t.module).toMatch(/^bert\.encoder\.layer\.\d\.attention\.self\.(query|value)$/);
      expected.set(`${m}.peanut_A.weight`, [4, hidden]);
      expected.set(`${m}.peanut_encoders.0.weight`, [4, 4]);
      expected.set(`${m}.peanut_decoders.0.weight`, [4, 4]);
      expected.set(`${m}.peanut_B.weight`, [hidden, 4]);
    }
    expect([...tensors.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, t] of tensors) {
      expect(t.dtype, k).toBe('F32');
      expect(t.shape, k).toEqual(expected.get(k));
    }
  });

  it('maps gelu_tanh to an ACT2FN name and records base model / task type', async () => {
    const dir = tempDir('peft-export-');
    const { path } = adaptedFixture(dir, { act: 'gelu_tanh', depth: 0, targets: 'attention.self.query' });
    const out = join(dir, 'adapter');
    expect((await runCli(['export-peft', path, '-o', out, '--base-model', 'prajjwal1/bert-tiny', '--task-type', 'SEQ_CLS'])).code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.act_fn).toBe('gelu_pytorch_tanh');
    expect(config.base_model_name_or_path).toBe('prajjwal1/bert-tiny');
    expect(config.task_type).toBe('SEQ_CLS');
    expect(config.target_modules).toEqual(['attention.self.query']);
  });
});

describe('export-peft → import-peft round trip', () => {
  it('reproduces every tweaker value bit for bit (adapted model, tweaker file, run dir)', async () => {
    const dir = tempDir('peft-rt-');
    const { path, result } = adaptedFixture(dir);
    const want = thetaBytes(path);
    expect(want.size).toBe(16); // 4 targets × (A, enc0, dec0, B)

    // 1. from the adapted model
    const a1 = join(dir, 'a1');
    expect((await runCli(['export-peft', path, '-o', a1])).code).toBe(0);
    const back = join(dir, 'back.onnx');
    const r = await runCli(['import-peft', a1, f.modelPath, '-o', back]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const got = thetaBytes(back);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, b] of want) expect(Buffer.compare(got.get(k)!, b), k).toBe(0);
    const meta = readAdapterMeta(loadModel(back))!;
    expect(meta.config).toEqual(result.meta.config);
    expect(meta.targetModules).toBe('query,value');

    // 2. from a tweaker file (--save-tweaker form) and 3. from a run directory's latest checkpoint
    const tweaker = join(dir, 'tweaker.safetensors');
    writeTweakerState(tweaker, result.meta, result.state);
    const run = join(dir, 'run');
    const params = new Map([...result.state].map(([k, v]) => [k, { dtype: 'F32' as const, shape: result.meta.targets.flatMap((t) => t.params).find((p) => p.name === k)!.shape, data: v }]));
    const zeros = new Map([...params].map(([k, t]) => [k, { ...t, data: new Float32Array(t.data.length) }]));
    const peanut = { config: result.meta.config, targetModules: result.meta.targetModules, modules: Object.fromEntries(result.meta.targets.map((t) => [t.module, { node: t.node, weight: t.weight, op: t.op, in: t.in, out: t.out }])) };
    const hyper = { lr: 1e-3, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, gradClip: null, warmup: 0, schedule: 'constant' as const, batchSize: 2, totalSteps: 3, seed: 0, shuffle: false };
    saveCheckpoint(run, { step: 1, epoch: 0, position: 0, params: zeros, m: zeros, v: zeros, hyper, peanut, task: 'seq-cls' });
    saveCheckpoint(run, { step: 3, epoch: 0, position: 0, params, m: zeros, v: zeros, hyper, peanut, task: 'seq-cls' });
    for (const [src, name] of [
      [tweaker, 'a2'],
      [run, 'a3'],
    ] as const) {
      const out = join(dir, name);
      const e = await runCli(['export-peft', src, '-o', out]);
      expect(e.stderr).toBe('');
      expect(e.code).toBe(0);
      const a = readSafetensors(join(a1, 'adapter_model.safetensors')).tensors;
      const b = readSafetensors(join(out, 'adapter_model.safetensors')).tensors;
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [k, t] of a) expect(Buffer.compare(Buffer.from(b.get(k)!.data.buffer), Buffer.from(t.data.buffer)), k).toBe(0);
    }
    const cfg3 = JSON.parse(readFileSync(join(dir, 'a3', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg3.task_type).toBe('SEQ_CLS');
  });

  it('imports into an external-data export (two data files): external data kept, same θ bytes', async () => {
    const dir = tempDir('peft-ext-');
    const { path } = adaptedFixture(dir);
    const adapter = join(dir, 'adapter');
    expect((await runCli(['export-peft', path, '-o', adapter])).code).toBe(0);
    const ext = join(dir, 'model.onnx');
    saveTwoDataFiles(loadModel(f.modelPath), ext);
    const back = join(dir, 'back-ext.onnx');
    const r = await runCli(['import-peft', adapter, ext, '-o', back]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(`${back}_data`)).toBe(true);
    const want = thetaBytes(path);
    const got = thetaBytes(back);
    for (const [k, b] of want) expect(Buffer.compare(got.get(k)!, b), k).toBe(0);
  });

  it('a LoRA adapter round-trips too (peft_type LORA, lora_alpha)', async () => {
    const dir = tempDir('peft-lora-');
    const model = loadModel(f.modelPath);
    const first = inject(model, { method: 'lora', r: 2, alpha: 16, targets: 'value' });
    const init = new Map([...randomize(first.state, 3)].map(([k, t]) => [k, t.data as Float32Array]));
    const path = join(dir, 'lora.onnx');
    saveModel(inject(model, { method: 'lora', r: 2, alpha: 16, targets: 'value', init }).model, path);
    const out = join(dir, 'adapter');
    expect((await runCli(['export-peft', path, '-o', out])).code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 16, target_modules: ['value'], use_dora: false, use_rslora: false, fan_in_fan_out: false, bias: 'none' });
    const keys = [...readSafetensors(join(out, 'adapter_model.safetensors')).tensors.keys()];
    expect(keys).toContain('base_model.model.bert.encoder.layer.0.attention.self.value.lora_A.weight');
    const back = join(dir, 'back.onnx');
    expect((await runCli(['import-peft', out, f.modelPath, '-o', back])).code).toBe(0);
    const want = thetaBytes(path);
    const got = thetaBytes(back);
    for (const [k, b] of want) expect(Buffer.compare(got.get(k)!, b), k).toBe(0);
  });
});

describe('GPT-2 Conv1D layers', () => {
  const g = loadFixture('gpt2_tiny');
  it('PEANuT export warns that PEFT adapts nn.Linear only; LoRA export sets fan_in_fan_out and round-trips', async () => {
    const dir = tempDir('peft-gpt2-');
    const adapted = join(dir, 'gpt2.onnx');
    saveModel(inject(loadModel(g.modelPath), { r: 4, targets: 'attn.c_attn' }).model, adapted);
    const r = await runCli(['export-peft', adapted, '-o', join(dir, 'p')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: 2 target\(s\) look like GPT-2 Conv1D layers \(transformer\.h\.0\.attn\.c_attn, transformer\.h\.1\.attn\.c_attn\); PEFT's PEANuT adapts torch\.nn\.Linear only/);

    const model = loadModel(g.modelPath);
    const first = inject(model, { method: 'lora', r: 2, alpha: 4, targets: 'attn.c_attn' });
    const init = new Map([...randomize(first.state, 5)].map(([k, t]) => [k, t.data as Float32Array]));
    const lora = join(dir, 'lora.onnx');
    saveModel(inject(model, { method: 'lora', r: 2, alpha: 4, targets: 'attn.c_attn', init }).model, lora);
    const out = join(dir, 'l');
    const e = await runCli(['export-peft', lora, '-o', out]);
    expect(e.stderr).toBe('');
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.fan_in_fan_out).toBe(true);
    const back = join(dir, 'back.onnx');
    expect((await runCli(['import-peft', out, g.modelPath, '-o', back])).code).toBe(0);
    const want = thetaBytes(lora);
    const got = thetaBytes(back);
    expect(got.size).toBe(4);
    for (const [k, b] of want) expect(Buffer.compare(got.get(k)!, b), k).toBe(0);
  });
});

describe('import-peft errors: exit 1, one message naming the culprits, nothing written', () => {
  async function exported(): Promise<{ dir: string; adapter: string }> {
    const dir = tempDir('peft-err-');
    const { path } = adaptedFixture(dir);
    const adapter = join(dir, 'adapter');
    expect((await runCli(['export-peft', path, '-o', adapter])).code).toBe(0);
    return { dir, adapter };
  }

  function rewrite(adapter: string, edit: (t: Map<string, SafeTensor>) => void): void {
    const p = join(adapter, 'adapter_model.safetensors');
    const { tensors, metadata } = readSafetensors(p);
    edit(tensors);
    writeSafetensors(p, tensors, metadata);
  }

  async function expectFailure(adapter: string, dir: string, ...patterns: RegExp[]): Promise<string> {
    const out = join(dir, 'out.onnx');
    const r = await runCli(['import-peft', adapter, f.modelPath, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    for (const p of patterns) expect(r.stderr).toMatch(p);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.startsWith('.out.onnx') || n.startsWith('out.onnx'))).toEqual([]);
    return r.stderr;
  }

  it('unknown module names are listed', async () => {
    const { dir, adapter } = await exported();
    rewrite(adapter, (t) => {
      for (const k of [...t.keys()]) {
        if (!k.includes('layer.1.attention.self.value')) continue;
        t.set(k.replace('layer.1.attention.self.value', 'layer.7.attention.self.value'), t.get(k)!);
        t.set(k.replace('layer.1.attention.self.value', 'decoder.q_proj'), t.get(k)!);
        t.delete(k);
      }
    });
    await expectFailure(adapter, dir, /match no layer/, /bert\.encoder\.layer\.7\.attention\.self\.value/, /decoder\.q_proj/);
  });

  it('shape mismatches are listed with the expected shape', async () => {
    const { dir, adapter } = await exported();
    rewrite(adapter, (t) => {
      const k = 'base_model.model.bert.encoder.layer.0.attention.self.query.peanut_A.weight';
      t.set(k, { dtype: 'F32', shape: [4, 16], data: new Float32Array(64) });
    });
    await expectFailure(adapter, dir, /shape mismatch/, /layer\.0\.attention\.self\.query\.peanut_A\.weight is \[4, 16\].*needs \[4, 32\]/);
  });

  it('a config whose r disagrees with the tensors is a shape error on every key', async () => {
    const { dir, adapter } = await exported();
    const p = join(adapter, 'adapter_config.json');
    writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), r: 8 }));
    await expectFailure(adapter, dir, /shape mismatch/, /needs \[8, 32\]/);
  });

  it('missing files are named', async () => {
    const { dir, adapter } = await exported();
    rmSync(join(adapter, 'adapter_model.safetensors'));
    await expectFailure(adapter, dir, /missing .*adapter_model\.safetensors/);
    rmSync(join(adapter, 'adapter_config.json'));
    await expectFailure(adapter, dir, /adapter_config\.json.*adapter_model\.safetensors/);
    await expectFailure(join(dir, 'nope'), dir, /not found: .*nope/);
    const r = await runCli(['import-peft', adapter, join(dir, 'missing.onnx'), '-o', join(dir, 'out.onnx')]);
    expect(r.code).toBe(1);
  });

  it('unsupported configs: act_fn, peft_type, modules_to_save, missing/extra parameters', async () => {
    const { dir, adapter } = await exported();
    const p = join(adapter, 'adapter_config.json');
    const base = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    writeFileSync(p, JSON.stringify({ ...base, act_fn: 'mish' }));
    await expectFailure(adapter, dir, /act_fn 'mish' is not supported; supported: relu, gelu/);
    writeFileSync(p, JSON.stringify({ ...base, peft_type: 'IA3' }));
    await expectFailure(adapter, dir, /peft_type "IA3" is not supported; supported: PEANUT, LORA/);
    writeFileSync(p, JSON.stringify({ ...base, modules_to_save: ['classifier'] }));
    await expectFailure(adapter, dir, /modules_to_save/);
    writeFileSync(p, JSON.stringify({ ...base, depth: 0 }));
    await expectFailure(adapter, dir, /unexpected parameter\(s\) for depth 0: .*peanut_encoders\.0\.weight/);
    writeFileSync(p, JSON.stringify({ ...base, depth: 2 }));
    await expectFailure(adapter, dir, /missing parameter\(s\): .*peanut_encoders\.1\.weight/);
  });

  it('export-peft of a checkpoint without adapter metadata asks for --model, and accepts it', async () => {
    const dir = tempDir('peft-nometa-');
    const { path, result } = adaptedFixture(dir);
    const bare = join(dir, 'bare.safetensors');
    writeSafetensors(bare, new Map([...result.state].map(([k, v]) => [k, { dtype: 'F32' as const, shape: result.meta.targets.flatMap((t) => t.params).find((q) => q.name === k)!.shape, data: v }])));
    const out = join(dir, 'adapter');
    const r = await runCli(['export-peft', bare, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not record the adapter configuration.*--model <adapted\.onnx>/);
    expect(existsSync(out)).toBe(false);
    const ok = await runCli(['export-peft', bare, '-o', out, '--model', path]);
    expect(ok.code).toBe(0);
    expect(readSafetensors(join(out, 'adapter_model.safetensors')).tensors.size).toBe(16);
  });
});
