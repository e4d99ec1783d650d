/**
 * Early writeback for `FileSink`: an `fdatasync` of a file that is still being written, run on a
 * small worker thread so the writer does not wait for it. One flush is in flight at a time, and
 * the writer can see, without waiting, whether it has finished (a shared flag), so it starts the
 * next one as soon as enough new bytes are written, and waits for the one in flight before it
 * closes the file. The worker is started on first use and does not keep the process alive.
 *
 * A flush only moves work earlier: the writer still fsyncs the file before relying on it, so when
 * the worker cannot be started or stops answering, writing goes on without early flushes.
 */
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { fdatasyncSync } = require('node:fs');
const busy = new Int32Array(workerData);
parentPort.on('message', (fd) => {
  try { fdatasyncSync(fd); } catch {}
  Atomics.store(busy, 0, 0);
  Atomics.notify(busy, 0);
});
`;

/** How long `waitForFlush` waits for a flush before giving up on the worker. */
const FLUSH_TIMEOUT_MS = 30_000;

let flusher: { worker: Worker; busy: Int32Array } | null | undefined;

function theFlusher(): { worker: Worker; busy: Int32Array } | null {
  if (flusher !== undefined) return flusher;
  try {
    const shared = new SharedArrayBuffer(4);
    const worker = new Worker(WORKER, { eval: true, workerData: shared });
    worker.unref();
    // A worker that fails is not used again (its flag may never clear).
    worker.on('error', () => (flusher = null));
    flusher = { worker, busy: new Int32Array(shared) };
  } catch {
    flusher = null;
  }
  return flusher;
}

/** Starts an `fdatasync` of `fd` unless one is in flight; whether it was started. */
export function startFlush(fd: number): boolean {
  const f = theFlusher();
  if (!f || Atomics.load(f.busy, 0) !== 0) return false;
  Atomics.store(f.busy, 0, 1);
  f.worker.postMessage(fd);
  return true;
}

/** Waits until no flush is in flight, so a file a flush may use can be closed. */
export function waitForFlush(): void {
  const f = flusher;
  if (!f) return;
  if (Atomics.wait(f.busy, 0, 1, FLUSH_TIMEOUT_MS) === 'timed-out') {
    // Its flush never ended: stop using it (the pending flush of a closed descriptor is harmless).
    flusher = null;
    void f.worker.terminate();
  }
}
