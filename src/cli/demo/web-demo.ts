/**
 * `peanut-onnx demo --web`: serves the browser demo (demo-web/ in the package) on localhost. The
 * page fine-tunes the shipped model on the shipped task in the browser with `peanut-onnx/web` on
 * onnxruntime-web, so the server only hands out files: the page, the package's browser bundle
 * (dist/peanut-onnx-web.js), onnxruntime-web's dist/ and the shipped model and data. Every
 * response is cross-origin isolated (COOP/COEP), so onnxruntime-web may use wasm threads.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PeanutError } from '../../index.ts';
import { startStaticServer, type Route, type StaticServer } from './static-server.ts';

/** The package root (this file is src/cli/demo/ or dist/cli/demo/). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const WEB_DEMO_FILES = {
  page: join(ROOT, 'demo-web', 'index.html'),
  script: join(ROOT, 'demo-web', 'demo.js'),
  bundle: join(ROOT, 'dist', 'peanut-onnx-web.js'),
  graphs: join(ROOT, 'graphs'),
} as const;

/** onnxruntime-web's dist/ folder, or a clear error when it is not installed (it is an optional peer dependency). */
function ortWebDist(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  } catch {
    throw new PeanutError('E_FILE_NOT_FOUND', 'the browser demo needs onnxruntime-web: install it beside peanut-onnx (npm install onnxruntime-web@~1.30.0)');
  }
}

/**
 * The demo's routes: every file it serves.
 *
 * @param bundle - the browser bundle to serve (default the package's dist/peanut-onnx-web.js)
 */
export function webDemoRoutes(bundle: string = WEB_DEMO_FILES.bundle): Record<string, Route> {
  for (const f of [WEB_DEMO_FILES.page, WEB_DEMO_FILES.script]) if (!existsSync(f)) throw new PeanutError('E_FILE_NOT_FOUND', `the browser demo page is missing: ${f} (reinstall peanut-onnx)`);
  if (!existsSync(bundle)) throw new PeanutError('E_FILE_NOT_FOUND', `the browser bundle is missing: ${bundle}; build it with \`npm run build\``);
  return {
    '/': { file: WEB_DEMO_FILES.page },
    '/index.html': { file: WEB_DEMO_FILES.page },
    '/demo.js': { file: WEB_DEMO_FILES.script },
    '/peanut-onnx-web.js': { file: bundle },
    '/ort/': { dir: ortWebDist() },
    '/graphs/': { dir: WEB_DEMO_FILES.graphs },
    '/favicon.ico': { body: new Uint8Array(0), type: 'image/x-icon' },
  };
}

/**
 * Starts the demo server on 127.0.0.1 (`port` 0: any free port).
 *
 * @throws PeanutError E_IO when the port is taken; E_FILE_NOT_FOUND for a missing bundle or onnxruntime-web
 */
export async function serveWebDemo(port = 0, bundle?: string): Promise<StaticServer> {
  const routes = webDemoRoutes(bundle);
  try {
    return await startStaticServer(routes, port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new PeanutError('E_IO', `port ${port} is in use; pick another with --port, or --port 0 for any free one`);
    if (code === 'EACCES') throw new PeanutError('E_IO', `port ${port} needs privileges; pick one above 1023 with --port`);
    throw err;
  }
}
