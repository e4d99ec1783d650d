/**
 * The harness itself: `pack` round-trips typed arrays exactly, the static server sends the
 * isolation headers and stays inside its directories, and a page call returns what the page
 * computed, with the page cross-origin isolated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { openBrowserPage, type BrowserPage } from './harness.ts';
import { fromBase64, pack, toBase64, unpack } from './pack.ts';
import { startStaticServer } from '../../src/cli/demo/static-server.ts';

const SAMPLE = {
  f32: Float32Array.of(1.5, -0, Number.NaN, 3.4028234663852886e38, 1e-45),
  f64: Float64Array.of(Math.PI, -Infinity),
  i64: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n),
  u8: Uint8Array.of(1, 2, 3),
  // A view into a larger buffer at an odd offset: only its own bytes travel.
  view: new Int32Array(new ArrayBuffer(64), 4, 3).fill(-7),
  nested: [{ name: 'x', dims: [2, 3], data: Int32Array.of(5) }, null, 'text', 42],
};

function expectSame(got: typeof SAMPLE): void {
  expect(Object.is(got.f32[1], -0)).toBe(true);
  expect(Array.from(got.f32)).toEqual(Array.from(SAMPLE.f32));
  expect(got.f64).toBeInstanceOf(Float64Array);
  expect(Array.from(got.f64)).toEqual([Math.PI, -Infinity]);
  expect(Array.from(got.i64)).toEqual(Array.from(SAMPLE.i64));
  expect(Array.from(got.u8)).toEqual([1, 2, 3]);
  expect(got.view).toBeInstanceOf(Int32Array);
  expect(Array.from(got.view)).toEqual([-7, -7, -7]);
  expect(got.nested[0]).toEqual({ name: 'x', dims: [2, 3], data: Int32Array.of(5) });
  expect(got.nested.slice(1)).toEqual([null, 'text', 42]);
}

describe('pack', () => {
  it('round-trips JSON with typed arrays exactly (NaN, -0, int64 extremes, offset views)', () => {
    expectSame(unpack<typeof SAMPLE>(fromBase64(toBase64(pack(SAMPLE)))));
  });
});

/** Status of a GET whose path is sent exactly as given. */
function rawStatus(url: string): Promise<number> {
  return new Promise((ok, fail) => {
    get(url, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    }).on('error', fail);
  });
}

describe('static server', () => {
  it('sends COOP/COEP on every response and serves nothing outside a mounted directory', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'pub'));
    writeFileSync(join(root, 'pub', 'a.wasm'), 'wasm');
    writeFileSync(join(root, 'secret.txt'), 'no');
    const server = await startStaticServer({ '/pub/': { dir: join(root, 'pub') }, '/x.json': { body: '{}' } });
    try {
      const a = await fetch(`${server.origin}/pub/a.wasm`);
      expect(a.status).toBe(200);
      expect(a.headers.get('content-type')).toBe('application/wasm');
      expect(a.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(a.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      expect((await fetch(`${server.origin}/x.json`)).headers.get('content-type')).toBe('application/json');
      // Sent as written (fetch would normalise the path): an encoded '/' after '..' decodes to a
      // path that leaves pub/.
      expect(await rawStatus(`${server.origin}/pub/..%2fsecret.txt`)).toBe(404);
      expect(await rawStatus(`${server.origin}/pub/a.wasm`)).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('page calls', () => {
  let page: BrowserPage;
  beforeAll(async () => {
    page = await openBrowserPage({ entry: 'test/browser/pages/echo.ts' });
  }, 60_000);
  afterAll(async () => {
    await page?.close();
  });

  it('a typed-array tree goes to the page and back unchanged', async () => {
    expectSame(await page.call<typeof SAMPLE>('echo', SAMPLE));
  });

  it('the page is a cross-origin isolated secure context', async () => {
    expect(await page.call('isolation')).toEqual({ crossOriginIsolated: true, sharedArrayBuffer: true, secureContext: true });
  });

  it('BAD CALL - an error thrown in the page, or an unknown export, fails the call with its message', async () => {
    await expect(page.call('fail', { message: 'broken on purpose' })).rejects.toThrow(/page call fail failed: .*broken on purpose/);
    await expect(page.call('nope')).rejects.toThrow(/no exported function 'nope'/);
  });
});
