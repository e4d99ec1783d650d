/**
 * A static localhost server (node:http), for the browser demo (`peanut-onnx demo --web`) and the
 * browser tests. Every response carries the headers
 * that make a page cross-origin isolated (COOP same-origin + COEP require-corp), which browsers
 * require before they give a page SharedArrayBuffer, and so before onnxruntime-web's wasm build
 * can run more than one thread.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';

/** What a URL path serves: a file, a directory below a path prefix ending in `/`, or bytes. */
export type Route = { file: string } | { dir: string } | { body: Uint8Array | string; type?: string };

export interface StaticServer {
  /** `http://127.0.0.1:<port>` (localhost counts as a secure context, as WebGPU requires). */
  origin: string;
  /** Adds or replaces a route while the server runs. */
  set(path: string, route: Route): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body?: Uint8Array | string): void {
  res.writeHead(status, { ...ISOLATION_HEADERS, 'content-type': type });
  res.end(body);
}

function sendFile(res: ServerResponse, path: string, type?: string): void {
  res.writeHead(200, { ...ISOLATION_HEADERS, 'content-type': type ?? TYPES[extname(path)] ?? 'application/octet-stream', 'content-length': statSync(path).size });
  createReadStream(path).pipe(res);
}

/**
 * Starts the server on 127.0.0.1, on `port` (default: an ephemeral one).
 *
 * @param routes - URL path → route; a key ending in `/` with `{ dir }` serves that directory's
 *   files below the prefix (never outside it).
 */
export async function startStaticServer(routes: Record<string, Route> = {}, port = 0): Promise<StaticServer> {
  const table = new Map(Object.entries(routes));
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const exact = table.get(path);
    if (exact && 'body' in exact) return send(res, 200, exact.type ?? TYPES[extname(path)] ?? 'application/octet-stream', exact.body);
    if (exact && 'file' in exact) return sendFile(res, exact.file);
    for (const [prefix, route] of table) {
      if (!prefix.endsWith('/') || !path.startsWith(prefix) || !('dir' in route)) continue;
      const root = resolve(route.dir);
      const file = resolve(join(root, path.slice(prefix.length)));
      if (file.startsWith(root + sep) && existsSync(file) && statSync(file).isFile()) return sendFile(res, file);
    }
    send(res, 404, 'text/plain', `not found: ${path}`);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${bound}`,
    set: (path, route) => void table.set(path, route),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
