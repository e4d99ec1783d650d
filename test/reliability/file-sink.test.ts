import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeFile, writeFileAtomic } from '../../src/node/atomic.ts';
import { FileSink } from '../../src/node/sink.ts';

const dir = mkdtempSync(join(tmpdir(), 'peanut-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes whose value depends on the position, so a misplaced piece shows. */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

describe('FileSink', () => {
  it('writes gathered small pieces and large ones in order, past several early flushes', () => {
    const path = join(dir, 'mixed.bin');
    const sink = new FileSink(openSync(path, 'w'));
    const expected: Uint8Array[] = [];
    const reused = new Uint8Array(256 * 1024);
    // 3000 small pieces (more than one writev takes), large ones in between, and a buffer the
    // caller refills after each write (as the model copy does): 70 MB, past two 32 MiB flushes.
    for (let i = 0; i < 3000; i++) {
      const small = pattern(1 + (i % 97), i);
      sink.add(small);
      expected.push(small);
      if (i % 10 === 0) {
        reused.set(pattern(reused.byteLength, i));
        sink.write(reused);
        expected.push(reused.slice());
      }
      if (i % 1000 === 999) {
        const big = pattern(5 * 2 ** 20, i);
        sink.add(big);
        expected.push(big);
      }
    }
    sink.add(new Uint8Array(0));
    sink.finish();
    const want = Buffer.concat(expected);
    expect(want.byteLength).toBeGreaterThan(64 * 2 ** 20);
    expect(Buffer.compare(readFileSync(path), want)).toBe(0);
  });

  it('abort closes the file (once) after writes and an early flush', () => {
    const path = join(dir, 'aborted.bin');
    const sink = new FileSink(openSync(path, 'w'));
    sink.add(pattern(100, 1));
    sink.write(pattern(40 * 2 ** 20, 2));
    sink.abort();
    sink.abort();
    expect(statSync(path).size).toBe(100 + 40 * 2 ** 20);
  });
});

describe('FileSink copies', () => {
  const source = join(dir, 'source.bin');
  const bytes = pattern(12 * 2 ** 20 + 123, 9);
  writeFileSync(source, bytes);

  it('copies ranges of another file, large ones on a worker thread, between written pieces', () => {
    const path = join(dir, 'copied.bin');
    const src = openSync(source, 'r');
    const sink = new FileSink(openSync(path, 'w'));
    const ranges: Array<[number, number]> = [[5, 3 * 2 ** 20], [100, 1000], [2 ** 20 + 7, 8 * 2 ** 20 + 11], [0, bytes.byteLength]];
    const expected: Uint8Array[] = [];
    for (const [i, [offset, length]] of ranges.entries()) {
      const head = pattern(10 + i, i);
      sink.add(head);
      expected.push(head);
      sink.copy(src, source, offset, length, 'test file');
      expected.push(bytes.subarray(offset, offset + length));
    }
    const tail = pattern(2 * 2 ** 20, 5);
    sink.write(tail);
    expected.push(tail);
    sink.finish();
    closeSync(src);
    expect(Buffer.compare(readFileSync(path), Buffer.concat(expected))).toBe(0);
  });

  it('a range past the end of its file fails the write with E_NOT_ONNX, on the worker or not', () => {
    for (const length of [1000, 4 * 2 ** 20]) {
      const src = openSync(source, 'r');
      const sink = new FileSink(openSync(join(dir, 'short.bin'), 'w'));
      let err: unknown;
      try {
        sink.copy(src, source, bytes.byteLength - 10, length, 'test file');
        sink.finish();
      } catch (e) {
        err = e;
        sink.abort();
      }
      closeSync(src);
      expect(err).toMatchObject({ code: 'E_NOT_ONNX', message: expect.stringContaining(`is truncated: need bytes ${bytes.byteLength - 10}..`) });
    }
    // The worker goes on working after a failed copy.
    const src = openSync(source, 'r');
    const sink = new FileSink(openSync(join(dir, 'after.bin'), 'w'));
    sink.copy(src, source, 0, bytes.byteLength, 'test file');
    sink.finish();
    closeSync(src);
    expect(Buffer.compare(readFileSync(join(dir, 'after.bin')), bytes)).toBe(0);
  });
});

describe('replacing and removing large files', () => {
  it('writeFileAtomic over a large file leaves the new content; removeFile removes it at once', () => {
    const path = join(dir, 'large.bin');
    writeFileSync(path, pattern(20 * 2 ** 20, 3));
    const next = pattern(17 * 2 ** 20, 4);
    writeFileAtomic(path, next.subarray(0, 1000), next.subarray(1000));
    expect(Buffer.compare(readFileSync(path), next)).toBe(0);
    removeFile(path);
    expect(existsSync(path)).toBe(false);
    removeFile(path); // absent: nothing to do
  });
});
