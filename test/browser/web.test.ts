/**
 * `peanut-onnx/web` in headless Chromium against the CLI on onnxruntime-node, for the same job:
 * the shipped model adapted by `peanut-onnx inject` (PEANuT r 8 on query,value, seed 0), one epoch
 * of the demo task (2,000 examples, batches of 16: 125 steps), lr 3e-3, seed 0.
 *
 * Chromium wasm (1 thread, the page cross-origin isolated):
 *  - the checkpoint carries the CLI's metadata (step, data cursor, seed, every hyper-parameter,
 *    adapter record, task);
 *  - θ within 1e-2 relative per tensor (max|Δ| / max|θ|) of the CLI's, every loss of the first 50
 *    steps within 1e-4 of the CLI's (wasm and native kernels round differently; the difference
 *    grows once a ReLU unit of a tweaker sits near zero and flips on one side only);
 *  - the page's merge equals `peanut-onnx merge --checkpoint` of the page's checkpoint, byte for
 *    byte, and the merged model's accuracy is within one point of the CLI-merged model's;
 *  - checkpoints cross: `train --resume` continues a page's checkpoint.
 * Chromium wasm, 2 threads: the page gets its threads and follows the same losses.
 * WebGPU on SwiftShader (Chromium's CPU Vulkan): the compute nodes run on the WebGPU provider
 * and a few steps match wasm.
 */
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors } from '../../src/formats/safetensors.ts';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { evaluate } from '../../src/web.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { relError } from '../helpers/fixtures.ts';
import { openBrowserPage, ORT_WEB_ROUTES, type BrowserPage } from './harness.ts';
import { nodeCounts, nodePlacement } from './ort-log.ts';
import type { JobArgs, JobResult } from './pages/web.ts';

ortWeb.env.wasm.numThreads = 1;

const ROOT = join(import.meta.dirname, '..', '..');
const FILES = { model: join(ROOT, 'graphs', 'bert-tiny.onnx'), train: join(ROOT, 'graphs', 'demo', 'train.jsonl'), eval: join(ROOT, 'graphs', 'demo', 'eval.jsonl') };
const JOB = { batchSize: 16, lr: 3e-3, seed: 0 } as const;
const STEPS_PER_EPOCH = 125;
const URLS = { model: '/data/adapted.onnx', train: '/data/train.jsonl', eval: '/data/eval.jsonl' } as const;
const PAGE = 'test/browser/pages/web.ts';
const THETA_BAR = 1e-2;
const LOSS_BAR = 1e-4;
const LOSS_STEPS = 50;
const GPU_STEPS = 3;

const dir = tempDir('peanut-browser-web-');
const adapted = join(dir, 'adapted.onnx');
const cliRun = join(dir, 'cli-run');
let cliLosses: number[];
let cliCheckpoint: string;
const measured: string[] = [];

function routes() {
  return { ...ORT_WEB_ROUTES, [URLS.model]: { file: adapted }, [URLS.train]: { file: FILES.train }, [URLS.eval]: { file: FILES.eval } };
}

beforeAll(async () => {
  const inj = await runCli(['inject', FILES.model, '--targets', 'query,value', '--rank', '8', '--seed', '0', '-o', adapted]);
  expect(inj.code, inj.stderr).toBe(0);
  const t = await runCli(['train', adapted, '--task', 'seq-cls', '--data', FILES.train, '--eval', FILES.eval, '-o', cliRun, '--epochs', '1', '--batch-size', '16', '--lr', '3e-3', '--seed', '0', '--ep', 'cpu', '--threads', '1']);
  expect(t.code, t.stderr).toBe(0);
  cliLosses = stepLosses(cliRun);
  cliCheckpoint = join(cliRun, 'checkpoints', `step-${STEPS_PER_EPOCH}.safetensors`);
}, 180_000);

afterAll(() => {
  if (measured.length) console.info(measured.join('\n'));
});

/** The step losses of a CLI run, from its metrics.jsonl (evaluation lines left out). */
function stepLosses(run: string): number[] {
  const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number });
  return lines.flatMap((l) => (l.loss !== undefined ? [l.loss] : []));
}

const maxLossDiff = (a: number[], b: number[], n: number) => Math.max(...a.slice(0, n).map((l, i) => Math.abs(l - b[i]!)));

describe('Chromium, onnxruntime-web wasm: inject → train (1 epoch) → merge, against the CLI', () => {
  let page: BrowserPage;
  let run: JobResult;
  beforeAll(async () => {
    page = await openBrowserPage({ entry: PAGE, routes: routes() });
    run = await page.call<JobResult>('runJob', { bundle: 'wasm', ep: 'wasm', threads: 1, ...URLS, epochs: 1, ...JOB, mergeAndEvaluate: true } satisfies JobArgs);
  }, 240_000);
  afterAll(async () => {
    await page?.close();
  });

  it("the checkpoint has the CLI's metadata for the same job", () => {
    expect(run.ep).toBe('wasm');
    expect(run.crossOriginIsolated).toBe(true);
    expect(run.losses).toHaveLength(STEPS_PER_EPOCH);
    const ours = parseSafetensors(run.checkpoint, 'page').metadata;
    const theirs = parseSafetensors(readFileSync(cliCheckpoint), 'cli').metadata;
    expect(ours).toEqual(theirs);
    expect(ours.step).toBe(String(STEPS_PER_EPOCH));
  });

  it(`θ within ${THETA_BAR} relative per tensor; losses within ${LOSS_BAR} over the first ${LOSS_STEPS} steps`, () => {
    const cli = decodeCheckpoint(readFileSync(cliCheckpoint), 'cli');
    const theta = Math.max(...[...cli.params].map(([k, t]) => relError(run.params[k]!, t.data as Float32Array)));
    const loss = maxLossDiff(run.losses, cliLosses, LOSS_STEPS);
    measured.push(`chromium wasm vs CLI, ${STEPS_PER_EPOCH} steps: θ rel err max ${theta.toExponential(2)}; |Δloss| max over ${LOSS_STEPS} steps ${loss.toExponential(2)}, over all ${maxLossDiff(run.losses, cliLosses, STEPS_PER_EPOCH).toExponential(2)}`);
    expect(theta).toBeLessThan(THETA_BAR);
    expect(loss).toBeLessThan(LOSS_BAR);
  });

  it("the page's merge is `peanut-onnx merge --checkpoint` of its checkpoint, byte for byte; accuracy within one point of the CLI-merged model's", async () => {
    const ckpt = join(dir, 'page.safetensors');
    writeFileSync(ckpt, run.checkpoint);
    const out = join(dir, 'merged-from-page.onnx');
    const m = await runCli(['merge', adapted, '--checkpoint', ckpt, '-o', out]);
    expect(m.code, m.stderr).toBe(0);
    expect(Buffer.from(run.merged!).equals(readFileSync(out))).toBe(true);
    const cliMerged = join(dir, 'merged-cli.onnx');
    const c = await runCli(['merge', adapted, '--checkpoint', cliRun, '-o', cliMerged]);
    expect(c.code, c.stderr).toBe(0);
    const cliAcc = await evaluate({ ort: ortWeb, model: readFileSync(cliMerged), task: 'seq-cls', data: readFileSync(FILES.eval, 'utf8') });
    measured.push(`merged accuracy: page ${run.mergedAccuracy}, CLI ${cliAcc.accuracy} (${cliAcc.examples} examples)`);
    expect(Math.abs(run.mergedAccuracy! - cliAcc.accuracy)).toBeLessThanOrEqual(0.01);
    expect(run.evals.at(-1)!.eval_accuracy).toBeCloseTo(run.mergedAccuracy!, 10);
  }, 60_000);

  it("`train --resume` continues a page's checkpoint", async () => {
    const resumed = join(dir, 'resumed');
    mkdirSync(join(resumed, 'checkpoints'), { recursive: true });
    writeFileSync(join(resumed, 'checkpoints', `step-${STEPS_PER_EPOCH}.safetensors`), run.checkpoint);
    const r = await runCli(['train', adapted, '--task', 'seq-cls', '--data', FILES.train, '-o', resumed, '--resume', '--force', '--epochs', '2', '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(decodeCheckpoint(readFileSync(join(resumed, 'checkpoints', `step-${2 * STEPS_PER_EPOCH}.safetensors`)), 'resumed').step).toBe(2 * STEPS_PER_EPOCH);
  }, 90_000);

  it('2 wasm threads: the page gets them and follows the same losses', async () => {
    await page.reload();
    const two = await page.call<JobResult>('runJob', { bundle: 'wasm', ep: 'wasm', threads: 2, ...URLS, steps: 20, ...JOB } satisfies JobArgs);
    expect(two.numThreads).toBe(2);
    const r = await runCli(['train', adapted, '--task', 'seq-cls', '--data', FILES.train, '-o', join(dir, 'cli-20'), '--steps', '20', '--batch-size', '16', '--lr', '3e-3', '--seed', '0', '--ep', 'cpu', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const want = stepLosses(join(dir, 'cli-20'));
    const loss = maxLossDiff(two.losses, want, 20);
    measured.push(`chromium wasm 2 threads vs CLI, 20 steps: |Δloss| max ${loss.toExponential(2)}`);
    expect(loss).toBeLessThan(LOSS_BAR);
  }, 120_000);
});

describe('Chromium, onnxruntime-web WebGPU on SwiftShader', () => {
  let page: BrowserPage;
  beforeAll(async () => {
    page = await openBrowserPage({ entry: PAGE, webgpu: true, routes: routes() });
  }, 60_000);
  afterAll(async () => {
    await page?.close();
  });

  it(`the library trains on the WebGPU provider (compute nodes on the GPU); ${GPU_STEPS} steps match wasm`, async () => {
    const g = await page.call<{ navigatorGpu: boolean; adapter: null | { architecture?: string } }>('gpuAdapter');
    expect(g.adapter?.architecture).toBe('swiftshader');
    const args = { ...URLS, steps: GPU_STEPS, ...JOB, threads: 1 } as const;
    const gpu = await page.call<JobResult>('runJob', { bundle: 'webgpu', ep: 'webgpu', logLevel: 'verbose', ...args } satisfies JobArgs);
    expect(gpu.ep).toBe('webgpu');
    const placement = nodePlacement(page.log);
    const counts = nodeCounts(placement);
    measured.push(`WebGPU node placement: ${JSON.stringify(counts)}; step ms ${gpu.stepMs.map((x) => x.toFixed(0)).join(', ')}`);
    expect(counts.WebGpuExecutionProvider ?? 0).toBeGreaterThan(4 * (counts.CPUExecutionProvider ?? 0));
    for (const op of ['MatMul', 'Gemm']) expect(placement.CPUExecutionProvider?.[op] ?? 0, op).toBe(0);
    await page.reload();
    const wasm = await page.call<JobResult>('runJob', { bundle: 'wasm', ep: 'wasm', ...args } satisfies JobArgs);
    const loss = maxLossDiff(gpu.losses, wasm.losses, GPU_STEPS);
    const theta = Math.max(...Object.entries(wasm.params).map(([k, w]) => relError(gpu.params[k]!, w)));
    measured.push(`chromium WebGPU (SwiftShader) vs wasm, ${GPU_STEPS} steps: |Δloss| max ${loss.toExponential(2)}, θ rel err ${theta.toExponential(2)}`);
    expect(loss).toBeLessThan(1e-5);
    expect(theta).toBeLessThan(5e-4);
  }, 200_000);
});
