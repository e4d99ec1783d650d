/**
 * Runs code in headless Chromium and returns its results to Node.
 *
 *   const page = await openBrowserPage({ entry: 'test/browser/pages/web.ts', routes: { ...ORT_WEB_ROUTES, '/data/adapted.onnx': { file } } });
 *   const result = await page.call('runJob', { bundle: 'wasm', ep: 'wasm', threads: 2, model: '/data/adapted.onnx', … });
 *   await page.close();
 *
 * `entry` is a TypeScript module bundled for the browser (esbuild); its exported functions are
 * called by name with one argument. Arguments and results cross as `pack`ed bytes, so typed
 * arrays arrive exactly; large inputs go as routes of the static server (fetched by the page).
 * The server sends COOP/COEP headers, so the page is cross-origin isolated and onnxruntime-web
 * can use wasm threads. Chromium is Debian's (`/usr/bin/chromium`, or `$CHROMIUM`), started by
 * playwright-core with a fresh profile directory, removed on close.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { fromBase64, pack, toBase64, unpack } from './pack.ts';
import { startStaticServer, type Route, type StaticServer } from '../../src/cli/demo/static-server.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** onnxruntime-web's dist/ (its bundles, wasm binaries and worker scripts), served under /ort/. */
export const ORT_WEB_DIST = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
export const ORT_WEB_ROUTES: Record<string, Route> = { '/ort/': { dir: ORT_WEB_DIST } };

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/**
 * Chromium's switches. Without WebGPU the GPU process is off (`--disable-gpu`); with it, WebGPU
 * runs on SwiftShader, Chromium's CPU implementation of Vulkan, so it needs no GPU or driver.
 */
export function chromiumArgs(webgpu: boolean): string[] {
  return [
    '--headless',
    '--no-sandbox',
    ...(webgpu ? ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'] : ['--disable-gpu']),
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ];
}

export interface BrowserPageOptions {
  /** Module whose exported functions the page calls (path from the repository root or absolute). */
  entry: string;
  /** Extra routes of the static server (the page itself is `/`, its bundle `/page.js`). */
  routes?: Record<string, Route>;
  /** Start Chromium with WebGPU on the software adapter. */
  webgpu?: boolean;
  /** Chromium executable (default `$CHROMIUM` or /usr/bin/chromium). */
  executablePath?: string;
}

export interface BrowserPage {
  server: StaticServer;
  page: Page;
  /** Console lines and uncaught page errors so far. */
  log: string[];
  /** Calls the entry module's exported function `name` with `args`, returns its result. */
  call<T = unknown>(name: string, args?: unknown): Promise<T>;
  /** Reloads the page: a fresh JavaScript realm (modules, wasm instances) in the same browser. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** Bundles `entry` with the page runtime into one browser ES module. */
async function bundle(entry: string): Promise<string> {
  const contents = `import * as m from ${JSON.stringify(resolve(entry))};\nimport { exposeModule } from ${JSON.stringify(join(HERE, 'page-runtime.ts'))};\nexposeModule(m);\n`;
  const out = await build({
    stdin: { contents, resolveDir: HERE, loader: 'ts', sourcefile: 'page-entry.ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

const PAGE_HTML = '<!doctype html><meta charset="utf-8"><title>peanut-onnx browser test</title><script type="module" src="/page.js"></script>\n';

/** Starts the server and Chromium, loads the page and waits until its module is ready. */
export async function openBrowserPage(options: BrowserPageOptions): Promise<BrowserPage> {
  const executablePath = options.executablePath ?? process.env.CHROMIUM ?? DEFAULT_CHROMIUM;
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}: install it (Debian: apt-get install -y chromium) or set CHROMIUM to its path`);
  }
  const script = await bundle(options.entry);
  const server = await startStaticServer({ ...options.routes, '/': { body: PAGE_HTML, type: 'text/html; charset=utf-8' }, '/page.js': { body: script, type: 'text/javascript; charset=utf-8' }, '/favicon.ico': { body: new Uint8Array(0), type: 'image/x-icon' } });
  const profile = mkdtempSync(join(tmpdir(), 'peanut-onnx-chromium-'));
  let context: BrowserContext | undefined;
  const close = async () => {
    await context?.close().catch(() => {});
    await server.close();
    rmSync(profile, { recursive: true, force: true });
  };
  const log: string[] = [];
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: chromiumArgs(options.webgpu ?? false) });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    const ready = () => page.waitForFunction('globalThis.__ready === true', undefined, { timeout: 30_000 });
    await page.goto(`${server.origin}/`);
    await ready();
    const reload = async () => {
      await page.reload();
      await ready();
    };
    const call = async <T>(name: string, args: unknown = null): Promise<T> => {
      try {
        // A string expression, not a function: nothing of this module's transpiled code is sent.
        const result = await page.evaluate<string>(`globalThis.__call(${JSON.stringify(name)}, ${JSON.stringify(toBase64(pack(args)))})`);
        return unpack<T>(fromBase64(result));
      } catch (err) {
        const tail = log.slice(-20).join('\n  ');
        throw new Error(`page call ${name} failed: ${(err as Error).message}${tail ? `\n  page log:\n  ${tail}` : ''}`);
      }
    };
    return { server, page, log, call, reload, close };
  } catch (err) {
    await close();
    throw err;
  }
}
