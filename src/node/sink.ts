/**
 * Writing a new file front to back, for large outputs (models, their data files). Small pieces
 * (a model's headers and small tensors, thousands of them) are gathered and written with one
 * `writev` each, large ones as they come. As the file grows, its writeback is started by a worker
 * thread (an `fdatasync` each time `FLUSH_AHEAD_BYTES` more are written, one at a time), so the disk
 * works while the rest of the file is still being produced and the final fsync has little left to
 * wait for (see flusher.ts). `finish` still fsyncs and closes before returning, so a finished
 * file is as durable as with a plain write + fsync.
 */
import { closeSync, fsyncSync, writeSync, writevSync } from 'node:fs';
import { startFlush, waitForFlush } from './flusher.ts';

/** Bytes written between two early writeback starts. */
const FLUSH_AHEAD_BYTES = 32 * 2 ** 20;
/** Pieces smaller than this are gathered by `add`. */
const GATHER_BELOW = 64 * 1024;
/** Gathered bytes and pieces written in one go at most (the piece limit is Linux's IOV_MAX). */
const GATHER_BYTES = 1024 * 1024;
const GATHER_PIECES = 1024;

/** `writeSync` may write less than asked for large buffers; loop until done. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) {
    off += writeSync(fd, bytes, off, bytes.byteLength - off);
  }
}

/** `writevSync` until every piece is written (it may write less than asked). */
function writevAll(fd: number, pieces: Uint8Array[]): void {
  let rest = pieces;
  while (rest.length > 0) {
    let n = writevSync(fd, rest);
    let i = 0;
    while (i < rest.length && n >= rest[i]!.byteLength) n -= rest[i++]!.byteLength;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}

/** Sequential writes to the new file open as `fd` (see the module comment). */
export class FileSink {
  private readonly gathered: Uint8Array[] = [];
  private gatheredBytes = 0;
  private written = 0;
  private flushedAt = 0;
  private flushing = false;
  private done = false;

  constructor(private readonly fd: number) {}

  /** Writes `bytes` now (after anything gathered); the caller may reuse them on return. */
  write(bytes: Uint8Array): void {
    this.drain();
    writeAll(this.fd, bytes);
    this.advance(bytes.byteLength);
  }

  /** Writes `bytes`, possibly later, gathered with other small pieces: they must not change until `finish`. */
  add(bytes: Uint8Array): void {
    if (bytes.byteLength >= GATHER_BELOW) return this.write(bytes);
    if (bytes.byteLength === 0) return;
    this.gathered.push(bytes);
    this.gatheredBytes += bytes.byteLength;
    if (this.gathered.length >= GATHER_PIECES || this.gatheredBytes >= GATHER_BYTES) this.drain();
  }

  /** Writes what is gathered, fsyncs and closes the file. */
  finish(): void {
    this.drain();
    fsyncSync(this.fd);
    this.close();
  }

  /** Closes the file after a failure (the caller removes it). */
  abort(): void {
    try {
      this.close();
    } catch {
      /* already closed */
    }
  }

  private close(): void {
    if (this.done) return;
    this.done = true;
    // An early flush may still be using the descriptor.
    if (this.flushing) waitForFlush();
    closeSync(this.fd);
  }

  private drain(): void {
    if (this.gathered.length === 0) return;
    writevAll(this.fd, this.gathered);
    this.advance(this.gatheredBytes);
    this.gathered.length = 0;
    this.gatheredBytes = 0;
  }

  private advance(n: number): void {
    this.written += n;
    if (this.written - this.flushedAt < FLUSH_AHEAD_BYTES) return;
    if (!startFlush(this.fd)) return;
    this.flushing = true;
    this.flushedAt = this.written;
  }
}
