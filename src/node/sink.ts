/**
 * Writing a new file front to back, for large outputs (models, their data files). Small pieces
 * (a model's headers and small tensors, thousands of them) are gathered and written with one
 * `writev` each, large ones as they come, and ranges of other files (tensors of the model being
 * saved that live in a file) are copied by a worker thread (io-worker.ts) while the writer goes
 * on to the next piece, e.g. computes the next merged weight. Every write goes to its own
 * position, so the order in which they land does not matter. As the file grows, its writeback is
 * started early (an `fdatasync` on another thread once `FLUSH_AHEAD_BYTES` more are written), so
 * the disk works while the rest is still being produced and the final fsync has little left to
 * wait for. `finish` waits for the worker's jobs, fsyncs and closes before returning, so a
 * finished file is as durable as with a plain write + fsync.
 */
import { closeSync, fsyncSync, readSync, writeSync, writevSync } from 'node:fs';
import { PeanutError } from '../errors.ts';
import { ioWorker, type CopyJob } from './io-worker.ts';

/** Bytes written between two early writeback starts. */
const FLUSH_AHEAD_BYTES = 32 * 2 ** 20;
/** Pieces smaller than this are gathered by `add`. */
const GATHER_BELOW = 64 * 1024;
/** Gathered bytes and pieces written in one go at most (the piece limit is Linux's IOV_MAX). */
const GATHER_BYTES = 1024 * 1024;
const GATHER_PIECES = 1024;
/** Copies at least this large go to the worker; smaller ones are not worth a message. */
const WORKER_COPY_BYTES = 1024 * 1024;
/**
 * Bytes per read/write when the writer copies a range itself. Small enough to stay in the CPU
 * cache between the read and the write.
 */
const COPY_CHUNK = 256 * 2 ** 10;

/** `writeSync` at `position` until every byte is written (it may write less than asked). */
function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let off = 0;
  while (off < bytes.byteLength) {
    off += writeSync(fd, bytes, off, bytes.byteLength - off, position + off);
  }
}

/** `writevSync` at `position` until every piece is written (it may write less than asked). */
function writevAll(fd: number, pieces: Uint8Array[], position: number): void {
  let rest = pieces;
  while (rest.length > 0) {
    let n = writevSync(fd, rest, position);
    position += n;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.byteLength) n -= rest[i++]!.byteLength;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}

/** Writes to the new file open as `fd`, front to back (see the module comment). */
export class FileSink {
  private readonly gathered: Uint8Array[] = [];
  private gatheredBytes = 0;
  /** Where the next piece goes (everything before it is written or given to the worker). */
  private offset = 0;
  private flushedAt = 0;
  /** Bytes this sink wrote itself; with the worker's copies since `copiedBase`, what has landed. */
  private landed = 0;
  private copiedBase = 0;
  /** The last range given to `copy`, not started yet (see `dispatch`). */
  private pending: CopyJob | undefined;
  private chunk: Uint8Array | undefined;
  private usedWorker = false;
  private done = false;

  constructor(private readonly fd: number) {}

  /** Writes `bytes` now (after anything gathered); the caller may reuse them on return. */
  write(bytes: Uint8Array): void {
    this.drain();
    writeAll(this.fd, bytes, this.offset);
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

  /**
   * Appends `length` bytes at `offset` of the file open as `src` (its path `srcPath`, `what` it is,
   * for errors). `src` must stay open until `finish` or `abort` returns.
   *
   * @throws PeanutError E_NOT_ONNX when the file ends before the range does (here or from `finish`)
   */
  copy(src: number, srcPath: string, offset: number, length: number, what: string): void {
    this.drain();
    // A range that continues the previous one in both files (external data written back in
    // its order) joins it: one job instead of many.
    const p = this.pending;
    if (p && p.src === src && p.srcOffset + p.length === offset && p.dstOffset + p.length === this.offset) {
      p.length += length;
      this.offset += length;
      return;
    }
    this.dispatch();
    this.pending = { src, srcPath, srcOffset: offset, length, dst: this.fd, dstOffset: this.offset, what };
    this.offset += length;
  }

  /** Starts the copy `copy` left pending: on the worker when large, here otherwise. */
  private dispatch(): void {
    const job = this.pending;
    if (!job) return;
    this.pending = undefined;
    const worker = job.length >= WORKER_COPY_BYTES ? ioWorker() : null;
    if (worker) {
      if (!this.usedWorker) this.copiedBase = worker.copiedBytes();
      this.usedWorker = true;
      // Counted as it lands (`flushAhead`).
      worker.copy(job);
    } else {
      this.copyHere(job);
      this.landed += job.length;
    }
    this.flushAhead();
  }

  /** Writes what is gathered, waits for the worker's copies, fsyncs and closes the file. */
  finish(): void {
    this.drain();
    this.dispatch();
    this.settle();
    fsyncSync(this.fd);
    this.done = true;
    closeSync(this.fd);
  }

  /** Closes the file after a failure (the caller removes it), once the worker is done with it. */
  abort(): void {
    if (this.done) return;
    try {
      this.settle();
    } catch {
      /* the failure being handled is the one to report */
    }
    this.done = true;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }

  /** Waits until the worker has done every job for this file. */
  private settle(): void {
    if (!this.usedWorker) return;
    const worker = ioWorker()!;
    // While the copies run, keep the writeback going as they land.
    while (worker.copying(10)) this.flushAhead();
    this.usedWorker = false;
    worker.drain();
  }

  private copyHere(job: CopyJob): void {
    const chunk = (this.chunk ??= new Uint8Array(COPY_CHUNK));
    for (let done = 0; done < job.length; ) {
      const want = Math.min(chunk.byteLength, job.length - done);
      for (let got = 0; got < want; ) {
        const n = readSync(job.src, chunk, got, want - got, job.srcOffset + done + got);
        if (n === 0) throw new PeanutError('E_NOT_ONNX', `${job.what} '${job.srcPath}' is truncated: need bytes ${job.srcOffset}..${job.srcOffset + job.length}`);
        got += n;
      }
      writeAll(this.fd, chunk.subarray(0, want), job.dstOffset + done);
      done += want;
    }
  }

  private drain(): void {
    if (this.gathered.length === 0) return;
    writevAll(this.fd, this.gathered, this.offset);
    this.advance(this.gatheredBytes);
    this.gathered.length = 0;
    this.gatheredBytes = 0;
  }

  private advance(n: number): void {
    this.offset += n;
    this.landed += n;
    this.flushAhead();
  }

  /** Starts an early flush once `FLUSH_AHEAD_BYTES` more have landed in the file (written here or by the worker's copies). */
  private flushAhead(): void {
    const worker = this.usedWorker ? ioWorker() : null;
    const landed = this.landed + (worker ? worker.copiedBytes() - this.copiedBase : 0);
    if (landed - this.flushedAt < FLUSH_AHEAD_BYTES) return;
    const w = worker ?? ioWorker();
    if (!w?.flush(this.fd)) return;
    if (!this.usedWorker) this.copiedBase = w.copiedBytes();
    this.usedWorker = true;
    this.flushedAt = landed;
  }
}
