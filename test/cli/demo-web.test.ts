/**
 * `peanut-onnx demo --web`: the server hands out the page, the browser bundle, onnxruntime-web and
 * the shipped model and data, cross-origin isolated; a taken port or a bad --port is one line.
 * (The page itself runs in Chromium: test/browser/demo-page.test.ts.)
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serveWebDemo } from '../../src/cli/demo/web-demo.ts';
import { runCli, tempDir } from '../helpers/cli.ts';

describe('demo --web', () => {
  it('serves the page, the bundle, onnxruntime-web and the shipped files, cross-origin isolated', async () => {
    const bundle = join(tempDir(), 'bundle.js');
    writeFileSync(bundle, 'export const x = 1;\n');
    const server = await serveWebDemo(0, bundle);
    try {
      for (const [path, type] of [['/', 'text/html'], ['/demo.js', 'text/javascript'], ['/peanut-onnx-web.js', 'text/javascript'], ['/ort/ort.webgpu.min.mjs', 'text/javascript'], ['/graphs/bert-tiny.onnx', 'application/octet-stream'], ['/graphs/demo/eval.jsonl', 'application/octet-stream']] as const) {
        const res = await fetch(`${server.origin}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type'), path).toContain(type);
        expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
        expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
        await res.arrayBuffer();
      }
      expect((await fetch(`${server.origin}/graphs/../package.json`)).status).toBe(404);
      expect((await fetch(`${server.origin}/graphs/%2e%2e/package.json`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('a taken port is one line naming the fix; a bad --port is a usage error', async () => {
    const other = createServer();
    await new Promise<void>((ok) => other.listen(0, '127.0.0.1', ok));
    const { port } = other.address() as AddressInfo;
    try {
      const bundle = join(tempDir(), 'bundle.js');
      writeFileSync(bundle, '');
      await expect(serveWebDemo(port, bundle)).rejects.toMatchObject({ code: 'E_IO', message: `port ${port} is in use; pick another with --port, or --port 0 for any free one` });
    } finally {
      other.close();
    }
    const r = await runCli(['demo', '--web', '--port', '70000']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
