/**
 * `peanut-onnx/web` (src/web.ts) in Node on onnxruntime-web's wasm build, against the CLI and the
 * Node library on onnxruntime-node for the same job (the shipped model, PEANuT r 8 on
 * query,value, the demo task, batches of 16, seed 0):
 *
 * - inject, merge and export-peft give the bytes the CLI writes;
 * - train follows the Node library's run: the same data order, losses within 1e-4 and θ within
 *   1e-3 relative per tensor over 20 steps (wasm and native kernels round differently), the
 *   same checkpoint metadata;
 * - checkpoints cross both ways: the CLI resumes a web run, and the web resumes a CLI run, each
 *   ending where an uninterrupted run ends;
 * - bad input is one PeanutError line.
 *
 * The browser itself (Chromium, wasm and WebGPU) is test/browser/web.test.ts.
 */
import * as ortWeb from 'onnxruntime-web';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, exportPeft, inject, isUntrained, merge, readCheckpoint, train, type WebTrainResult } from '../../src/web.ts';
import { loadModel, saveModel, train as trainOnNode } from '../../src/index.ts';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { parseSafetensors } from '../../src/formats/safetensors.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { relError } from '../helpers/fixtures.ts';

ortWeb.env.wasm.numThreads = 1;

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'graphs', 'bert-tiny.onnx');
const TRAIN = join(ROOT, 'graphs', 'demo', 'train.jsonl');
const EVAL = join(ROOT, 'graphs', 'demo', 'eval.jsonl');
const STEPS = 20;
const JOB = { task: 'seq-cls', batchSize: 16, lr: 3e-3, seed: 0 } as const;

const dir = tempDir('peanut-web-entry-');
const adaptedPath = join(dir, 'adapted.onnx');
let adapted: Uint8Array;
let web: WebTrainResult;

beforeAll(async () => {
  const r = await runCli(['inject', MODEL, '--targets', 'query,value', '--rank', '8', '--seed', '0', '-o', adaptedPath]);
  expect(r.code, r.stderr).toBe(0);
  adapted = readFileSync(adaptedPath);
  web = await train({ ort: ortWeb, model: adapted, data: readFileSync(TRAIN, 'utf8'), eval: readFileSync(EVAL, 'utf8'), steps: STEPS, ...JOB });
}, 120_000);

describe('peanut-onnx/web on onnxruntime-web (wasm) vs the CLI on onnxruntime-node', () => {
  it('inject gives the bytes `peanut-onnx inject` writes', () => {
    const r = inject(readFileSync(MODEL), { targets: 'query,value', r: 8, seed: 0 });
    expect(Buffer.from(r.model).equals(Buffer.from(adapted))).toBe(true);
    expect(r.targets).toHaveLength(4);
    expect(r.trainableParams).toBe(4096);
  });

  it('train follows the Node library: same data order, losses within 1e-4, θ within 1e-3, same checkpoint metadata', async () => {
    const run = join(dir, 'node-run');
    const lines: number[] = [];
    const node = await trainOnNode(adaptedPath, { data: TRAIN, eval: EVAL, outDir: run, steps: STEPS, ep: 'cpu', threads: 1, ...JOB, onEvent: (e) => e.type === 'step' && lines.push(e.loss) });
    expect(web.step).toBe(STEPS);
    expect(web.ep).toBe('wasm');
    expect(web.metrics.map((m) => m.loss)).toHaveLength(STEPS);
    web.metrics.forEach((m, i) => expect(Math.abs((m.loss as number) - lines[i]!)).toBeLessThan(1e-4));
    for (const [k, t] of node.params) expect(relError(web.params[k]!.data as Float32Array, t.data as Float32Array), k).toBeLessThan(1e-3);
    // The checkpoint is the CLI's format with the CLI's metadata (step, cursor, seed, every hyper-parameter, adapter, task).
    const ours = parseSafetensors(web.checkpoint, 'web').metadata;
    const theirs = parseSafetensors(readFileSync(node.checkpoint), 'cli').metadata;
    expect(ours).toEqual(theirs);
    expect(web.evals.map((e) => e.step)).toEqual([0, STEPS]);
    expect(Math.abs(web.evals[1]!.eval_accuracy! - node.evals[1]!.eval_accuracy!)).toBeLessThanOrEqual(0.002);
  }, 120_000);

  it('merge of the web checkpoint gives the bytes `peanut-onnx merge --checkpoint` writes for it', async () => {
    const ckpt = join(dir, 'web.safetensors');
    writeFileSync(ckpt, web.checkpoint);
    const out = join(dir, 'merged-cli.onnx');
    const r = await runCli(['merge', adaptedPath, '--checkpoint', ckpt, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const merged = merge({ model: adapted, checkpoint: web.checkpoint });
    expect(Buffer.from(merged).equals(readFileSync(out))).toBe(true);
    // params from the result give the same model as the checkpoint
    expect(Buffer.from(merge({ model: adapted, params: web.params })).equals(Buffer.from(merged))).toBe(true);
    expect(isUntrained({ model: adapted })).toBe(true);
    expect(isUntrained({ model: adapted, checkpoint: web.checkpoint })).toBe(false);
  });

  it("the merged model's own accuracy equals the eval graph's at the end of training", async () => {
    const merged = merge({ model: adapted, checkpoint: web.checkpoint });
    const acc = await evaluate({ ort: ortWeb, model: merged, task: 'seq-cls', data: readFileSync(EVAL, 'utf8') });
    expect(acc.examples).toBe(500);
    expect(Math.abs(acc.accuracy - web.evals.at(-1)!.eval_accuracy!)).toBeLessThanOrEqual(0.002);
  }, 60_000);

  it('exportPeft gives the files `peanut-onnx export-peft` writes', async () => {
    const ckpt = join(dir, 'peft.safetensors');
    writeFileSync(ckpt, web.checkpoint);
    const out = join(dir, 'peft');
    const r = await runCli(['export-peft', ckpt, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const ours = exportPeft({ checkpoint: web.checkpoint });
    expect(ours.config).toBe(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(Buffer.from(ours.weights).equals(readFileSync(join(out, 'adapter_model.safetensors')))).toBe(true);
  });

  it('checkpoints cross both ways: the CLI resumes a web run and the web resumes a CLI run, each ending as the uninterrupted run', async () => {
    const data = readFileSync(TRAIN, 'utf8');
    const half = STEPS / 2;
    // web → CLI: a web run stopped after `half` steps, continued with `train --resume`.
    const stop = new AbortController();
    const first = await train({ ort: ortWeb, model: adapted, data, steps: STEPS, ...JOB, signal: stop.signal, onEvent: (e) => e.type === 'step' && e.step === half && stop.abort() });
    expect(first.interrupted).toBe(true);
    expect(readCheckpoint(first.checkpoint).step).toBe(half);
    const run = join(dir, 'resume-cli');
    mkdirSync(join(run, 'checkpoints'), { recursive: true });
    writeFileSync(join(run, 'checkpoints', `step-${half}.safetensors`), first.checkpoint);
    const r = await runCli(['train', adaptedPath, '--task', 'seq-cls', '--data', TRAIN, '-o', run, '--resume', '--ep', 'cpu', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const cli = decodeCheckpoint(readFileSync(join(run, 'checkpoints', `step-${STEPS}.safetensors`)), 'cli');
    for (const [k, t] of cli.params) expect(relError(t.data as Float32Array, web.params[k]!.data as Float32Array), k).toBeLessThan(1e-3);
    // CLI → web: a CLI run that saved at `half`, continued here.
    const cliRun = join(dir, 'cli-half');
    const c = await runCli(['train', adaptedPath, '--task', 'seq-cls', '--data', TRAIN, '-o', cliRun, '--steps', String(STEPS), '--batch-size', '16', '--lr', '3e-3', '--seed', '0', '--save-every', String(half), '--ep', 'cpu', '--threads', '1']);
    expect(c.code, c.stderr).toBe(0);
    const resumed = await train({ ort: ortWeb, model: adapted, data, task: 'seq-cls', resume: readFileSync(join(cliRun, 'checkpoints', `step-${half}.safetensors`)) });
    expect(resumed.step).toBe(STEPS);
    expect(resumed.metrics[0]!.step).toBe(half + 1);
    for (const [k, t] of Object.entries(resumed.params)) expect(relError(t.data as Float32Array, web.params[k]!.data as Float32Array), k).toBeLessThan(1e-3);
  }, 180_000);
});

describe('peanut-onnx/web: bad input is one clear error', () => {
  const errorOf = async (f: () => unknown) => {
    try {
      await f();
    } catch (err) {
      return { code: (err as { code?: string }).code, message: (err as Error).message };
    }
    throw new Error('expected an error');
  };

  it('refuses what is not an onnxruntime module, an unknown provider, a model that is not bytes, bad data', async () => {
    const data = readFileSync(TRAIN, 'utf8');
    expect(await errorOf(() => train({ ort: {}, model: adapted, task: 'seq-cls', data }))).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringMatching(/not an onnxruntime module/) });
    expect(await errorOf(() => train({ ort: ortWeb, model: adapted, task: 'seq-cls', data, ep: 'cuda' as 'wasm' }))).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringMatching(/'cuda' is not one of wasm, webgpu/) });
    expect(await errorOf(() => train({ ort: ortWeb, model: 'adapted.onnx' as unknown as Uint8Array, task: 'seq-cls', data }))).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringMatching(/must be the \.onnx file's bytes/) });
    expect(await errorOf(() => train({ ort: ortWeb, model: adapted, task: 'seq-cls', data: '{"input_ids": [1, 2], "labels": 0}\nnot json\n' }))).toMatchObject({ code: 'E_DATA', message: expect.stringMatching(/^the training data:2: not valid JSON/) });
    expect(await errorOf(() => train({ ort: ortWeb, model: readFileSync(MODEL), task: 'seq-cls', data }))).toMatchObject({ code: 'E_NOT_ADAPTED' });
    expect(await errorOf(() => merge({ model: adapted, checkpoint: new Uint8Array([1, 2, 3]) }))).toMatchObject({ code: 'E_BAD_SAFETENSORS' });
    expect(await errorOf(() => inject(new Uint8Array([8, 1, 2])))).toMatchObject({ code: 'E_NOT_ONNX' });
  });

  it('refuses a model whose weights live in external data files, saying how to fix it', async () => {
    const ext = join(dir, 'ext');
    mkdirSync(ext);
    saveModel(loadModel(adaptedPath), join(ext, 'adapted.onnx'), { externalData: true });
    const bytes = readFileSync(join(ext, 'adapted.onnx'));
    expect(await errorOf(() => merge({ model: bytes }))).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringMatching(/external data files.*save the model with its weights inside/) });
  });
});
