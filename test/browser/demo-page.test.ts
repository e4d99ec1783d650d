/**
 * The shipped browser demo (demo-web/, served by `peanut-onnx demo --web`) in headless Chromium,
 * driven as a user drives it: Train, Stop part-way, Resume, then the merged model's accuracy and
 * the downloads. The package's browser bundle is built fresh from src/web.ts for the test (as
 * `npm run build` builds it). With UPDATE_SCREENSHOTS=1 the finished page is saved as
 * docs/images/demo-web.png, the picture README shows.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveWebDemo } from '../../src/cli/demo/web-demo.ts';
import type { StaticServer } from '../../src/cli/demo/static-server.ts';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { decodeModel } from '../../src/onnx/model.ts';
import { runCli } from '../helpers/cli.ts';
import { chromiumArgs, DEFAULT_CHROMIUM } from './harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** README's picture is replaced only when asked (UPDATE_SCREENSHOTS=1); otherwise the shot goes to the temp folder. */
const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'images') : undefined;

interface DemoState {
  state: string;
  ep?: string;
  threads: number;
  step: number;
  totalSteps: number;
  losses: Array<{ step: number; loss: number }>;
  evals: Array<{ step: number; eval_accuracy?: number }>;
  baseAccuracy?: number;
  mergedAccuracy?: number;
  error?: string;
}

const work = mkdtempSync(join(tmpdir(), 'peanut-demo-page-'));
let server: StaticServer;
let context: BrowserContext;
let page: Page;
const log: string[] = [];

const demoState = () => page.evaluate(() => (globalThis as unknown as { peanutDemo: DemoState }).peanutDemo);
async function waitFor(states: string[], timeout = 120_000): Promise<void> {
  try {
    await page.waitForFunction(
      (s) => {
        const d = (globalThis as unknown as { peanutDemo?: DemoState }).peanutDemo;
        return !!d && (s.includes(d.state) || d.state === 'error');
      },
      states,
      { timeout, polling: 100 },
    );
  } catch (err) {
    const status = await page.textContent('#status').catch(() => '?');
    throw new Error(`the page did not reach ${states.join('/')}: ${(err as Error).message}; status: ${status}\n${log.slice(-10).join('\n')}`);
  }
}

beforeAll(async () => {
  const bundle = join(work, 'peanut-onnx-web.js');
  await build({ entryPoints: [join(ROOT, 'src', 'web.ts')], bundle: true, platform: 'browser', format: 'esm', outfile: bundle, logLevel: 'silent' });
  server = await serveWebDemo(0, bundle);
  context = await chromium.launchPersistentContext(join(work, 'profile'), { executablePath: process.env.CHROMIUM ?? DEFAULT_CHROMIUM, headless: true, args: chromiumArgs(false), viewport: { width: 960, height: 1060 }, acceptDownloads: true });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(`${server.origin}/?ep=auto`);
  await waitFor(['ready']);
}, 120_000);

afterAll(async () => {
  await context?.close().catch(() => {});
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the browser demo page', () => {
  it('loads ready: the adapter injected in the page, the provider shown (wasm threads: the page is cross-origin isolated)', async () => {
    const s = await demoState();
    expect(s.error, log.join('\n')).toBeUndefined();
    expect(s.state).toBe('ready');
    // No WebGPU adapter with --disable-gpu: auto picks wasm, with threads.
    expect(s.ep).toBe('wasm');
    expect(s.threads).toBeGreaterThan(1);
    expect(await page.textContent('#ep')).toMatch(/^wasm \(CPU\), \d threads$/);
    expect(await page.textContent('#adapter')).toMatch(/4 layers: 4,096 trainable of/);
  });

  it('trains with a live chart and progress, stops part-way, resumes, merges and shows the merged accuracy', async () => {
    await page.click('#train');
    // Stop is pressed from inside the page the moment step 40 is reached (steps take tens of ms).
    await page.waitForFunction(
      () => {
        if ((globalThis as unknown as { peanutDemo: DemoState }).peanutDemo.step < 40) return false;
        document.getElementById('stop')!.click();
        return true;
      },
      undefined,
      { timeout: 120_000, polling: 5 },
    );
    await waitFor(['stopped']);
    const stopped = await demoState();
    expect(stopped.error, log.join('\n')).toBeUndefined();
    expect(stopped.step).toBeGreaterThanOrEqual(40);
    expect(stopped.step).toBeLessThan(stopped.totalSteps);
    expect(await page.textContent('#status')).toMatch(/^Stopped at step \d+ of 300/);
    expect(await page.isEnabled('#resume')).toBe(true);
    await page.click('#resume');
    await waitFor(['done'], 180_000);
    const s = await demoState();
    expect(s.error, log.join('\n')).toBeUndefined();
    expect(s.step).toBe(300);
    // One loss a step, across the stop: none lost, none repeated.
    expect(s.losses.map((l) => l.step)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(s.evals.map((e) => e.step)).toEqual([0, 50, 100, 150, 200, 250, 300]);
    // The job `peanut-onnx demo` runs: accuracy rises well above the base model's.
    expect(s.baseAccuracy!).toBeLessThan(0.75);
    expect(s.mergedAccuracy!).toBeGreaterThan(0.9);
    expect(s.mergedAccuracy).toBeCloseTo(s.evals.at(-1)!.eval_accuracy!, 10);
    expect(await page.textContent('#acc-merged')).toBe(`${(100 * s.mergedAccuracy!).toFixed(1)}%`);
    expect(await page.evaluate(() => (document.getElementById('progress') as HTMLProgressElement).value)).toBe(1);
    const shot = join(SCREENSHOT_DIR ?? work, 'demo-web.png');
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    expect(readFileSync(shot).byteLength).toBeGreaterThan(10_000);
  }, 300_000);

  it('offers the merged model, the PEFT adapter and the checkpoint; the CLI takes the checkpoint', async () => {
    const save = async (id: string) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
      const path = join(work, download.suggestedFilename());
      await download.saveAs(path);
      return path;
    };
    const merged = await save('dl-merged');
    expect(merged.endsWith('merged.onnx')).toBe(true);
    const proto = decodeModel(readFileSync(merged), merged);
    expect(proto.metadataProps.some((p) => p.key.startsWith('peanut'))).toBe(false);
    const config = JSON.parse(readFileSync(await save('dl-peft-config'), 'utf8')) as { peft_type: string; r: number };
    expect(config).toMatchObject({ peft_type: 'PEANUT', r: 8 });
    expect(readFileSync(await save('dl-peft-weights')).byteLength).toBeGreaterThan(4096 * 4);
    const ckpt = await save('dl-checkpoint');
    expect(decodeCheckpoint(readFileSync(ckpt), ckpt).step).toBe(300);
    // The page's checkpoint is the CLI's format: `export-peft` reads it.
    const r = await runCli(['export-peft', ckpt, '-o', join(work, 'peft-from-page')]);
    expect(r.code, r.stderr).toBe(0);
  }, 60_000);
});
