/**
 * The shipped model's training job in headless Chromium, against onnxruntime-node.
 *
 * The train graph is built in Node with the library and passed to the page as bytes, with the
 * job (θ, batches, learning rates) as `pack`ed tensors; the page runs it with onnxruntime-web and
 * the same loop as Node (`runTrainSteps`). Checked:
 *  - the job is the one `train()` runs (the loop on onnxruntime-node equals `train()` bit for bit);
 *  - Chromium wasm, 1 and 2 threads (the page cross-origin isolated): STEPS steps, every loss
 *    within 1e-5 relative of onnxruntime-node's and final θ within 1e-4 (max|Δ| / max|θ| per
 *    tensor); measured 2.7e-7 and 1.6e-5;
 *  - WebGPU on SwiftShader: an adapter exists, the float32-only train graph runs with its compute
 *    on the WebGPU execution provider, and GPU_STEPS steps match Chromium wasm: losses within
 *    1e-5 (measured 1.5e-7), θ within 5e-4 (measured 6e-5 to 9e-5). SwiftShader is slow (seconds
 *    a step, plus shader compilation on the first), hence few steps.
 *
 * Why θ differs more than the losses: the largest differences sit in PEANuT B entries whose
 * gradients are far below AdamW's eps (|g| ~ 1e-11 against eps 1e-8). There the update
 * lr·m/(√v + eps) is about lr·g/eps, so a difference of ~1e-12 in such a gradient (rounding in
 * sums that cancel to nearly zero, summed in another order by another kernel) moves θ by ~1e-6;
 * and B starts at zero, so max|θ| is only ~lr·t after t steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { train } from '../../src/node/train.ts';
import { trainingSessionOptions } from '../../src/train/training-graph.ts';
import { tempDir } from '../helpers/cli.ts';
import { relError } from '../helpers/fixtures.ts';
import { demoJob, type DemoJob } from './demo-job.ts';
import { openBrowserPage, ORT_WEB_ROUTES, type BrowserPage } from './harness.ts';
import { nodeCounts, nodePlacement } from './ort-log.ts';
import { pack } from './pack.ts';
import type { TrainArgs, TrainResult } from './pages/train.ts';
import { runTrainSteps, type TrainRun } from './train-loop.ts';

const STEPS = 20;
const GPU_STEPS = 3;
const LOSS_BAR = 1e-5;
const THETA_BAR = 1e-4;
const GPU_THETA_BAR = 5e-4;

const PAGE = 'test/browser/pages/train.ts';
const DATA = { graph: '/data/train.onnx', job: '/data/job.bin' } as const;

let demo: DemoJob;
let adapted: string;
/** onnxruntime-node, 1 intra-op thread, the trainer's session options. */
let native: TrainRun;

function compare(got: TrainRun, want: TrainRun): { loss: number; theta: number } {
  expect(got.losses).toHaveLength(want.losses.length);
  const loss = Math.max(...got.losses.map((l, i) => Math.abs(l - want.losses[i]!) / Math.abs(want.losses[i]!)));
  const theta = Math.max(...Object.entries(want.params).map(([k, w]) => relError(got.params[k]!, w)));
  return { loss, theta };
}

const measured: string[] = [];

beforeAll(async () => {
  adapted = join(tempDir(), 'adapted.onnx');
  demo = await demoJob(STEPS, adapted);
  const { session } = await createSession(demo.trainGraph, { ...trainingSessionOptions({ threads: 1 }), ep: 'cpu' });
  try {
    native = await runTrainSteps(ort, session, demo.job);
  } finally {
    await session.release();
  }
}, 120_000);

afterAll(() => {
  if (measured.length) console.info(measured.join('\n'));
});

describe('the demo job as data', () => {
  it('runTrainSteps on onnxruntime-node equals train() on the same options, bit for bit', async () => {
    const outDir = join(tempDir(), 'run');
    const result = await train(adapted, { ...demo.trainOptions, outDir, ep: 'cpu', threads: 1, saveEvery: 0 });
    const log = readFileSync(result.metricsLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number; lr: number });
    expect(log.map((l) => l.loss)).toEqual(native.losses);
    expect(log.map((l) => l.lr)).toEqual(demo.job.steps.map((s) => s.lr));
    for (const [k, t] of result.params) expect(Array.from(t.data as Float32Array), k).toEqual(Array.from(native.params[k]!));
  }, 60_000);
});

describe('Chromium, onnxruntime-web wasm', () => {
  let page: BrowserPage;
  beforeAll(async () => {
    page = await openBrowserPage({ entry: PAGE, routes: { ...ORT_WEB_ROUTES, [DATA.graph]: { body: demo.trainGraph }, [DATA.job]: { body: pack(demo.job) } } });
  }, 60_000);
  afterAll(async () => {
    await page?.close();
  });

  for (const threads of [1, 2]) {
    it(`${threads} thread(s): ${STEPS} steps match onnxruntime-node (loss ${LOSS_BAR}, θ ${THETA_BAR})`, async () => {
      await page.reload();
      const r = await page.call<TrainResult>('train', { bundle: 'wasm', ep: 'wasm', threads, ...DATA } satisfies TrainArgs);
      expect(r.crossOriginIsolated).toBe(true);
      expect(r.numThreads).toBe(threads);
      const e = compare(r.run, native);
      measured.push(`chromium wasm ${threads} thread(s) vs onnxruntime-node, ${STEPS} steps: loss rel err max ${e.loss.toExponential(2)}, θ rel err ${e.theta.toExponential(2)}`);
      expect(e.loss).toBeLessThan(LOSS_BAR);
      expect(e.theta).toBeLessThan(THETA_BAR);
    }, 90_000);
  }
});

describe('Chromium, onnxruntime-web WebGPU on SwiftShader', () => {
  let page: BrowserPage;
  beforeAll(async () => {
    page = await openBrowserPage({ entry: PAGE, webgpu: true, routes: { ...ORT_WEB_ROUTES, [DATA.graph]: { body: demo.trainGraph }, [DATA.job]: { body: pack(demo.job) } } });
  }, 60_000);
  afterAll(async () => {
    await page?.close();
  });

  it('navigator.gpu gives an adapter (SwiftShader)', async () => {
    const g = await page.call<{ navigatorGpu: boolean; adapter: null | { architecture?: string; isFallbackAdapter?: boolean } }>('gpuAdapter');
    expect(g.navigatorGpu).toBe(true);
    expect(g.adapter).not.toBeNull();
    measured.push(`WebGPU adapter: ${JSON.stringify(g.adapter)}`);
    expect(g.adapter!.architecture).toBe('swiftshader');
  });

  it(`the float32-only train graph runs on the WebGPU EP; ${GPU_STEPS} steps match Chromium wasm (loss ${LOSS_BAR}, θ ${GPU_THETA_BAR})`, async () => {
    const gpu = await page.call<TrainResult>('train', { bundle: 'webgpu', ep: 'webgpu', threads: 1, steps: GPU_STEPS, logLevel: 'verbose', ...DATA } satisfies TrainArgs);
    const placement = nodePlacement(page.log);
    const counts = nodeCounts(placement);
    measured.push(`WebGPU node placement: ${JSON.stringify(counts)}; on the CPU: ${JSON.stringify(placement.CPUExecutionProvider ?? {})}`);
    // The compute is on the GPU: every MatMul and Gemm, and most nodes.
    expect(counts.WebGpuExecutionProvider ?? 0).toBeGreaterThan(4 * (counts.CPUExecutionProvider ?? 0));
    for (const op of ['MatMul', 'Gemm']) expect(placement.CPUExecutionProvider?.[op] ?? 0, op).toBe(0);

    await page.reload();
    const wasm = await page.call<TrainResult>('train', { bundle: 'wasm', ep: 'wasm', threads: 1, steps: GPU_STEPS, ...DATA } satisfies TrainArgs);
    const e = compare(gpu.run, wasm.run);
    measured.push(`chromium WebGPU (SwiftShader) vs wasm, ${GPU_STEPS} steps: loss rel err max ${e.loss.toExponential(2)}, θ rel err ${e.theta.toExponential(2)}; step ms ${gpu.run.stepMs.map((x) => x.toFixed(0)).join(', ')}`);
    expect(e.loss).toBeLessThan(LOSS_BAR);
    expect(e.theta).toBeLessThan(GPU_THETA_BAR);
  }, 150_000);
});
