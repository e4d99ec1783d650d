/**
 * Worker threads that do `FileSink`'s bulk work while the writer goes on: copying byte ranges
 * from a source file to given positions of the file being written, and starting its writeback
 * early (`fdatasync`, one at a time). Jobs run in the order given; the writer sees how many are
 * done through shared memory and waits for all of them (`drain`) before it fsyncs or closes the
 * file, so no thread touches a descriptor after its owner let it go. A merge thus computes the
 * next merged weight while the tensors before it are copied.
 *
 * The threads are started on first use and must answer within `START_TIMEOUT_MS`; when they
 * cannot be started the writer does the work itself (`ioWorker` returns `null`). They do not
 * keep the process alive.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { PeanutError } from '../errors.ts';

/** Shared counters: jobs done, whether a job failed, started (1 once the worker runs), chunks copied. */
const DONE = 0;
const FAILED = 1;
const READY = 2;
const COPIED = 3;
/** Bytes per chunk of a worker's copy. */
const CHUNK = 256 * 1024;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync, writeSync, fdatasyncSync } = require('node:fs');
const state = new Int32Array(workerData.shared);
const errors = workerData.port;
const chunk = new Uint8Array(${CHUNK});
function copy(job) {
  for (let done = 0; done < job.length; ) {
    const want = Math.min(chunk.byteLength, job.length - done);
    for (let got = 0; got < want; ) {
      const n = readSync(job.src, chunk, got, want - got, job.srcOffset + done + got);
      if (n === 0) throw Object.assign(new Error('truncated'), { truncated: true });
      got += n;
    }
    for (let put = 0; put < want; ) put += writeSync(job.dst, chunk, put, want - put, job.dstOffset + done + put);
    done += want;
    Atomics.add(state, ${COPIED}, 1);
    Atomics.notify(state, ${DONE});
  }
}
parentPort.on('message', (job) => {
  try {
    if (job.op === 'flush') {
      try { fdatasyncSync(job.fd); } catch {}
    } else if (Atomics.load(state, ${FAILED}) === 0) copy(job);
  } catch (err) {
    Atomics.store(state, ${FAILED}, 1);
    errors.postMessage({ job, message: String((err && err.message) || err), code: err && err.code, truncated: Boolean(err && err.truncated) });
  }
  Atomics.add(state, ${DONE}, 1);
  Atomics.notify(state, ${DONE});
});
Atomics.store(state, ${READY}, 1);
Atomics.notify(state, ${READY});
`;

/** How long a starting worker may take to answer before the writer works without it. */
const START_TIMEOUT_MS = 5000;

/** A range copy: `length` bytes at `srcOffset` of `src` to `dstOffset` of `dst`. */
export interface CopyJob {
  src: number;
  srcOffset: number;
  length: number;
  dst: number;
  dstOffset: number;
  /** For the error of a truncated source: what the file is, and its path. */
  what: string;
  srcPath: string;
}

export interface IoWorker {
  copy(job: CopyJob): void;
  /** Starts an `fdatasync` of `fd` unless one is still running; whether it was started. */
  flush(fd: number): boolean;
  /** Bytes the copies have written so far (all files, in whole chunks, approximately). */
  copiedBytes(): number;
  /** Whether copies are still running; if so, waits up to `ms` for one to progress. */
  copying(ms: number): boolean;
  /** Waits until every job given so far is done; throws the first failure among them. */
  drain(): void;
}

/** One thread running jobs in order, and the count of jobs given to it. */
interface Lane {
  thread: Worker;
  state: Int32Array;
  errors: MessagePort;
  posted: number;
}

let worker: IoWorker | null | undefined;

/** The worker (started on first call), or `null` when it cannot run here. */
export function ioWorker(): IoWorker | null {
  if (worker === undefined) worker = start();
  return worker;
}

/**
 * Two threads: copies run on one, flushes on the other, so a flush waiting for the disk never
 * holds up the copies behind it.
 */
function start(): IoWorker | null {
  // Both threads start at once; each must answer before either is used.
  const started = [spawn(), spawn()];
  const [copies, flushes] = started.map((l) => (l && ready(l) ? l : null));
  if (!copies || !flushes) {
    for (const l of started) if (l) void l.thread.terminate();
    return null;
  }
  const wait = (l: Lane) => {
    for (let done = Atomics.load(l.state, DONE); done < l.posted; done = Atomics.load(l.state, DONE)) Atomics.wait(l.state, DONE, done);
  };
  return {
    copy(job) {
      copies.posted += 1;
      copies.thread.postMessage({ op: 'copy', ...job });
    },
    flush(fd) {
      if (Atomics.load(flushes.state, DONE) < flushes.posted) return false;
      flushes.posted += 1;
      flushes.thread.postMessage({ op: 'flush', fd });
      return true;
    },
    copiedBytes() {
      return Atomics.load(copies.state, COPIED) * CHUNK;
    },
    copying(ms) {
      const done = Atomics.load(copies.state, DONE);
      if (done >= copies.posted) return false;
      Atomics.wait(copies.state, DONE, done, ms);
      return true;
    },
    drain() {
      wait(flushes);
      wait(copies);
      if (Atomics.load(copies.state, FAILED) === 0) return;
      Atomics.store(copies.state, FAILED, 0);
      throw failure(copies.errors);
    },
  };
}

function spawn(): Lane | null {
  const shared = new SharedArrayBuffer(4 * 4);
  const { port1, port2 } = new MessageChannel();
  try {
    const thread = new Worker(WORKER, { eval: true, workerData: { shared, port: port1 }, transferList: [port1] });
    thread.unref();
    port2.unref();
    return { thread, state: new Int32Array(shared), errors: port2, posted: 0 };
  } catch {
    return null;
  }
}

/** Whether a thread has started, waiting up to `START_TIMEOUT_MS` (counted from now). */
function ready(l: Lane): boolean {
  Atomics.wait(l.state, READY, 0, START_TIMEOUT_MS);
  return Atomics.load(l.state, READY) === 1;
}

/** The error a failed job reported, as the writer would have thrown it. */
function failure(port: MessagePort): Error {
  const msg = receiveMessageOnPort(port)?.message as { job: CopyJob; message: string; code?: string; truncated: boolean } | undefined;
  if (!msg) return new PeanutError('E_IO', 'copying tensor bytes failed');
  const { job } = msg;
  if (msg.truncated) return new PeanutError('E_NOT_ONNX', `${job.what} '${job.srcPath}' is truncated: need bytes ${job.srcOffset}..${job.srcOffset + job.length}`);
  return Object.assign(new Error(msg.message), msg.code ? { code: msg.code } : {});
}
