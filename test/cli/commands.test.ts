import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { inject } from '../../src/adapter/inject.ts';
import { readAdapterMeta } from '../../src/adapter/adapter-meta.ts';
import { readSafetensors, writeSafetensors } from '../../src/node/safetensors-files.ts';
import { FIXTURES_DIR, relError } from '../helpers/fixtures.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import { tinyModel } from '../adapter/tiny.ts';

const BERT = join(FIXTURES_DIR, 'bert_tiny_opset14', 'model.onnx');
const GPT2 = join(FIXTURES_DIR, 'gpt2_tiny', 'model.onnx');

let dir: string;
let stderr: string;
let stdout: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'peanut-cli-'));
  stderr = '';
  stdout = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs the CLI and checks that it wrote nothing into `dir` unless it succeeded. */
async function cli(...argv: string[]): Promise<number> {
  const before = readdirSync(dir).sort();
  const code = await main(argv);
  if (code !== 0) expect(readdirSync(dir).sort()).toEqual(before);
  return code;
}

describe('inspect', () => {
  it('prints a table with default-target selection and skipped layers', async () => {
    expect(await cli('inspect', BERT, '--rank', '4')).toBe(0);
    expect(stdout).toMatch(/architecture: bert \(default targets: query, value\)/);
    expect(stdout).toMatch(/\*\s+bert\.encoder\.layer\.0\.attention\.self\.query\s+MatMul\s+\[32, 32\]\s+float32\s+256\s+onnx::MatMul_336/);
    expect(stdout).toMatch(/head\s+classifier\s+Gemm\(transB\)\s+\[32, 2\]/);
    expect(stdout).toMatch(/selected: 4 layer\(s\), 1,024 trainable parameters/);
    expect(stdout).toMatch(/4 MatMul\/Gemm layer\(s\) skipped:[\s\S]*computed at run time/);
  });

  it('--json: 2·out·r + 2·depth·r² per layer', async () => {
    expect(await cli('inspect', GPT2, '--json', '--rank', '4', '--depth', '1')).toBe(0);
    const report = JSON.parse(stdout) as { candidates: Array<{ module: string; params: number; selected: boolean; shape: number[] }>; architecture: { modelType: string } };
    expect(report.architecture.modelType).toBe('gpt2');
    const cattn = report.candidates.find((c) => c.module === 'transformer.h.0.attn.c_attn')!;
    expect(cattn).toMatchObject({ shape: [32, 96], params: 2 * 96 * 4 + 2 * 1 * 16, selected: true });
    expect(report.candidates.filter((c) => c.selected).map((c) => c.module)).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
  });

  it('an adapted model: shows the adapter, not the tweaker internals', async () => {
    const adapted = join(dir, 'adapted.onnx');
    saveModel(inject(loadModel(GPT2), { r: 2, targets: 'all-linear' }).model, adapted);
    expect(await cli('inspect', adapted, '--json')).toBe(0);
    const report = JSON.parse(stdout) as { adapter: { targets: unknown[] }; candidates: Array<{ module: string }>; skipped: Array<{ module: string; reason: string }> };
    expect(report.adapter.targets).toHaveLength(8);
    expect(report.candidates.map((c) => c.module)).toEqual(['lm_head']);
    expect(report.skipped.filter((s) => /already adapted \(peanut\)/.test(s.reason))).toHaveLength(8);
    expect(report.skipped.every((s) => !s.module.includes('peanut'))).toBe(true);
  });

  it('--targets previews a selection', async () => {
    expect(await cli('inspect', GPT2, '--json', '--targets', 'all-linear')).toBe(0);
    const report = JSON.parse(stdout) as { candidates: Array<{ module: string; selected: boolean }> };
    expect(report.candidates.filter((c) => !c.selected).map((c) => c.module)).toEqual(['lm_head']);
  });
});

describe('inject and merge', () => {
  it('inject -> merge (from the model, and from a run directory checkpoint)', async () => {
    const adapted = join(dir, 'adapted.onnx');
    const tweaker = join(dir, 'tweaker.safetensors');
    expect(await cli('inject', BERT, '-o', adapted, '--rank', '4', '--seed', '3', '--save-tweaker', tweaker)).toBe(0);
    expect(stdout).toMatch(/adapted 4 layer\(s\) with peanut \(default targets for bert: query,value\), 1,024 trainable parameters/);
    expect(stdout).toContain(`wrote ${adapted}`);
    expect(stdout).toContain(`wrote ${tweaker}`);
    const meta = readAdapterMeta(loadModel(adapted))!;
    expect(meta.config).toEqual({ method: 'peanut', r: 4, depth: 0, act: 'relu', scaling: 1 });
    const st = readSafetensors(tweaker);
    expect([...st.tensors.keys()].sort()).toEqual(meta.targets.flatMap((t) => t.params.map((p) => p.name)).sort());
    expect(JSON.parse(st.metadata['peanut_onnx.adapter']!).modules['bert.encoder.layer.0.attention.self.query']).toMatchObject({ weight: 'onnx::MatMul_336' });

    const merged = join(dir, 'merged.onnx');
    expect(await cli('merge', adapted, '-o', merged, '--safe')).toBe(0);
    expect(stdout).toContain(`wrote ${merged}`);
    expect(readFileSync(merged).byteLength).toBe(readFileSync(BERT).byteLength);

    // a run directory: the highest step wins; optimizer keys are ignored
    const run = join(dir, 'run');
    mkdirSync(join(run, 'checkpoints'), { recursive: true });
    const tensors = new Map(st.tensors);
    const b = tensors.get('bert.encoder.layer.0.attention.self.query.peanut_B.weight')!;
    tensors.set('bert.encoder.layer.0.attention.self.query.peanut_B.weight', { ...b, data: new Float32Array(b.data.length).fill(0.01) });
    tensors.set('adam.m.x', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    writeSafetensors(join(run, 'checkpoints', 'step-20.safetensors'), tensors);
    writeSafetensors(join(run, 'checkpoints', 'step-3.safetensors'), st.tensors);
    const merged2 = join(dir, 'merged2.onnx');
    expect(await cli('merge', adapted, '-o', merged2, '--checkpoint', run)).toBe(0);
    expect(stdout).toContain('step-20.safetensors');
    const w = (p: string) => graphOf(loadModel(p)).initializer.find((t) => t.name === 'onnx::MatMul_336')!.rawData;
    expect(Buffer.compare(Buffer.from(w(merged2)), Buffer.from(w(merged)))).not.toBe(0);
    expect(Buffer.compare(Buffer.from(w(merged)), Buffer.from(w(BERT)))).toBe(0); // B = 0
    // --engine ort evaluates the same tweaker nodes in ONNX Runtime
    const merged3 = join(dir, 'merged3.onnx');
    expect(await cli('merge', adapted, '-o', merged3, '--checkpoint', run, '--engine', 'ort')).toBe(0);
    const f32 = (p: string) => new Float32Array(Uint8Array.from(w(p)).buffer);
    expect(relError(f32(merged3), f32(merged2))).toBeLessThanOrEqual(1e-6);
    expect(await cli('merge', adapted, '-o', join(dir, 'x.onnx'), '--engine', 'gpu')).toBe(2);
  }, 30_000);

  it('inject --init --targets --method lora', async () => {
    const out = join(dir, 'a.onnx');
    expect(await cli('inject', GPT2, '-o', out, '--method', 'lora', '--rank', '2', '--alpha', '4', '--targets', 'attn.c_proj')).toBe(0);
    const meta = readAdapterMeta(loadModel(out))!;
    expect(meta.config).toEqual({ method: 'lora', r: 2, alpha: 4 });
    expect(meta.targets.map((t) => t.module)).toEqual(['transformer.h.0.attn.c_proj', 'transformer.h.1.attn.c_proj']);
  });
});

describe('EXPECTED FAILURE - CLI errors', () => {
  const out = () => join(dir, 'out.onnx');

  it.each([
    ['missing file', () => ['inject', join(dir, 'nope.onnx'), '-o', out()], /error: file not found: .*nope\.onnx/],
    ['bad activation', () => ['inject', BERT, '-o', out(), '--act', 'foo'], /error: unknown activation 'foo'; valid: relu, gelu, gelu_tanh, silu, tanh, sigmoid/],
    ['no match', () => ['inject', BERT, '-o', out(), '--targets', 'nothing'], /error: no layer matches --targets 'nothing'.*Candidate modules: bert\.encoder\.layer\.0\.attention\.self\.query, /],
    ['output = input', () => ['inject', BERT, '-o', BERT], /error: output '.*' is the same file as the input/],
    ['merge a plain model', () => ['merge', BERT, '-o', out()], /error: .*has no tweakers .*nothing to merge/],
    ['merge output = input', () => ['merge', BERT, '-o', BERT], /error: output '.*' is the same file as the input/],
    ['--save-tweaker = output', () => ['inject', BERT, '-o', out(), '--save-tweaker', out()], /error: output '.*out\.onnx' is the same file as the input/],
    ['output directory missing', () => ['inject', BERT, '-o', join(dir, 'no', 'such', 'a.onnx')], /error: output directory '.*no\/such' does not exist/],
    ['output is a directory', () => ['merge', BERT, '-o', dir], /error: output '.*' is a directory/],
  ])('%s: exit 1, one line', async (_name, argv, message) => {
    expect(await cli(...argv())).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  // Numbers are parsed as numbers by the command line: a bad one is a usage error.
  it.each([
    ['bad rank', () => ['inject', BERT, '-o', out(), '--rank', '0'], /error: rank must be an integer >= 1, got '0'/],
    ['bad depth', () => ['inject', BERT, '-o', out(), '--depth=-1'], /error: depth must be an integer >= 0, got '-1'/],
    ['rank not an integer', () => ['inject', BERT, '-o', out(), '--rank', '1.5'], /error: rank must be an integer >= 1, got '1.5'/],
    ['seed out of range', () => ['inject', BERT, '-o', out(), '--seed', '4294967296'], /error: seed must be an integer <= 4294967295/],
  ])('%s: exit 2 (usage), one line', async (_name, argv, message) => {
    expect(await cli(...argv())).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('not ONNX, and truncated ONNX', async () => {
    const text = join(dir, 'notes.onnx');
    writeFileSync(text, 'hello, this is not a model\n'.repeat(20));
    expect(await cli('inspect', text)).toBe(1);
    expect(stderr).toMatch(/error: .*notes\.onnx is not (a valid|an) ONNX model/);
    stderr = '';
    const cut = join(dir, 'cut.onnx');
    const bytes = readFileSync(BERT);
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.byteLength / 2)));
    expect(await cli('inject', cut, '-o', out(), '--targets', 'query')).toBe(1);
    expect(stderr).toMatch(/error: .*cut\.onnx is not (a valid|an) ONNX model/);
  });

  it('unknown architecture without --targets', async () => {
    const m = tinyModel([['X', [2, 4]]], ['Y'], (_b, g) => {
      g.addInitializer(floatTensor('w', [4, 3], new Float32Array(12)));
      g.addNode({ opType: 'MatMul', inputs: ['X', 'w'], outputs: ['Y'], name: '/mystery/proj/MatMul' });
    });
    const src = join(dir, 'tiny.onnx');
    saveModel(m, src);
    expect(await cli('inject', src, '-o', out())).toBe(1);
    expect(stderr).toMatch(/error: cannot tell the model's architecture.*pass --targets.*Candidate modules: mystery\.proj/);
  });

  it('injecting into an adapted model', async () => {
    const adapted = join(dir, 'adapted.onnx');
    saveModel(inject(loadModel(BERT), { r: 2 }).model, adapted);
    expect(await cli('inject', adapted, '-o', out())).toBe(1);
    expect(stderr).toMatch(/error: the model is already adapted/);
  });

  it('--init whose keys do not match', async () => {
    const init = join(dir, 'init.safetensors');
    writeSafetensors(init, { 'bert.encoder.layer.0.attention.self.query.peanut_A.weight': { dtype: 'F32', shape: [4, 3], data: new Float32Array(12) } });
    expect(await cli('inject', BERT, '-o', out(), '--rank', '4', '--init', init)).toBe(1);
    expect(stderr).toMatch(/error: .*init\.safetensors does not match the adapter: missing 7 key\(s\):.*wrong shape: bert\.encoder\.layer\.0\.attention\.self\.query\.peanut_A\.weight is \[4, 3\], expected \[4, 32\]/);
  });

  it('merge --safe with a non-finite weight', async () => {
    const f = loadModel(BERT);
    const probe = inject(f, { r: 2, targets: 'query' });
    const init = new Map(probe.state);
    const key = 'bert.encoder.layer.0.attention.self.query.peanut_B.weight';
    init.set(key, new Float32Array(init.get(key)!.length).fill(Number.NaN));
    const adapted = join(dir, 'adapted.onnx');
    saveModel(inject(f, { r: 2, targets: 'query', init }).model, adapted);
    expect(await cli('merge', adapted, '-o', out(), '--safe')).toBe(1);
    expect(stderr).toMatch(/error: merged weight of bert\.encoder\.layer\.0\.attention\.self\.query .*non-finite value \(NaN\)/);
  });

  it('merge --checkpoint that lacks the tweaker keys', async () => {
    const adapted = join(dir, 'adapted.onnx');
    saveModel(inject(loadModel(BERT), { r: 2 }).model, adapted);
    const ck = join(dir, 'ck.safetensors');
    writeSafetensors(ck, { 'adam.step': { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    expect(await cli('merge', adapted, '-o', out(), '--checkpoint', ck)).toBe(1);
    expect(stderr).toMatch(/error: .*ck\.safetensors does not match the adapter: missing 8 key\(s\)/);
    stderr = '';
    expect(await cli('merge', adapted, '-o', out(), '--checkpoint', join(dir, 'nope'))).toBe(1);
    expect(stderr).toMatch(/error: checkpoint not found/);
  });

  it('bad usage exits 2', async () => {
    expect(await cli('inject', BERT, '-o', out(), '--frobnicate')).toBe(2);
    expect(stderr).toMatch(/unknown option '--frobnicate'/);
    expect(await cli('inject', BERT)).toBe(2);
    expect(await cli('merge')).toBe(2);
  });

  it('copies of inputs are fine as outputs elsewhere', async () => {
    const copy = join(dir, 'model.onnx');
    copyFileSync(BERT, copy);
    expect(await cli('inject', copy, '-o', join(dir, 'a.onnx'), '--rank', '2')).toBe(0);
    expect(existsSync(join(dir, 'a.onnx'))).toBe(true);
  });
});
