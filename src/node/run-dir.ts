/**
 * A run directory on disk: the one home of its conventions.
 *
 *   <run dir>/checkpoints/step-<N>.safetensors   one checkpoint per save (train/checkpoint.ts format)
 *   <run dir>/metrics.jsonl                      the default metrics log
 *   <run dir>/.lock                              held by the run writing into it
 *
 * Listing, the latest checkpoint, pruning, resolving "a checkpoint file or a folder that holds
 * one" (run directories and artifact directories), and the lock that keeps two runs from mixing
 * their checkpoints.
 */
import { existsSync, linkSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PeanutError } from '../errors.ts';
import { CHECKPOINT_FORMAT, decodeCheckpoint, encodeCheckpoint, type TrainState } from '../train/checkpoint.ts';
import { ARTIFACT_FILES } from '../train/manifest.ts';
import { fileError, processAlive, removeDeadTemps, tempPathFor, writeFileAtomic } from './atomic.ts';
import { checkOutput, ensureDir } from './output-paths.ts';
import { averageStates } from '../train/average.ts';
import { parseSafetensors } from '../formats/safetensors.ts';

export const CHECKPOINT_DIR = 'checkpoints';
export const METRICS_FILE = 'metrics.jsonl';
const LOCK_FILE = '.lock';
const STEP_FILE = /^step-(\d+)\.safetensors$/;

export function checkpointPath(runDir: string, step: number): string {
  return join(runDir, CHECKPOINT_DIR, `step-${step}.safetensors`);
}

/** Writes one checkpoint file atomically. */
export function writeCheckpointFile(path: string, state: TrainState): void {
  writeFileAtomic(path, ...encodeCheckpoint(state));
}

/** Writes `<runDir>/checkpoints/step-<N>.safetensors` atomically and returns its path. */
export function saveCheckpoint(runDir: string, state: TrainState): string {
  ensureDir(join(runDir, CHECKPOINT_DIR));
  const path = checkpointPath(runDir, state.step);
  writeCheckpointFile(path, state);
  return path;
}

/** Reads a checkpoint file. */
export function loadCheckpoint(path: string): TrainState {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `checkpoint not found: ${path}`);
  return decodeCheckpoint(readFileSync(path), path);
}

/** Every checkpoint in `<runDir>/checkpoints`, by ascending step. */
export function listCheckpoints(runDir: string): Array<{ path: string; step: number }> {
  const dir = join(runDir, CHECKPOINT_DIR);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  const found: Array<{ path: string; step: number }> = [];
  for (const f of readdirSync(dir)) {
    const m = STEP_FILE.exec(f);
    if (m) found.push({ path: join(dir, f), step: Number(m[1]) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/** The checkpoint with the highest step in `<runDir>/checkpoints`, or undefined. */
export function latestCheckpoint(runDir: string): { path: string; step: number } | undefined {
  return listCheckpoints(runDir).at(-1);
}

/**
 * Deletes all but the `keep` newest checkpoints of a run (a long run saving every N steps would
 * otherwise fill the disk). Returns the paths removed. The newest is always kept.
 */
export function pruneCheckpoints(runDir: string, keep: number): string[] {
  const all = listCheckpoints(runDir);
  const drop = all.slice(0, Math.max(0, all.length - Math.max(1, keep)));
  for (const c of drop) rmSync(c.path, { force: true });
  return drop.map((c) => c.path);
}

/**
 * The checkpoint file behind a path: the path itself when it is a file; for a run directory its
 * latest `checkpoints/step-<N>.safetensors`; for an artifact directory its initial checkpoint.
 */
export function resolveCheckpoint(path: string): string {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `checkpoint not found: ${path}`);
  if (!statSync(path).isDirectory()) return path;
  const latest = latestCheckpoint(path);
  if (latest) return latest.path;
  const artifact = join(path, ARTIFACT_FILES.checkpoint);
  if (existsSync(artifact)) return artifact;
  throw new PeanutError('E_FILE_NOT_FOUND', `no ${CHECKPOINT_DIR}/step-<N>.safetensors in ${path} (a run directory), nor ${ARTIFACT_FILES.checkpoint} (an artifact directory)`);
}

/**
 * Fails fast when a live run holds the run directory's lock (without taking it): a second run
 * says so before it reads or builds anything.
 *
 * @throws PeanutError E_BUSY
 */
export function assertRunDirFree(runDir: string): void {
  const [pidText, host] = readLock(join(runDir, LOCK_FILE));
  const pid = Number(pidText);
  if (Number.isInteger(pid) && pid > 0 && (host !== hostname() || processAlive(pid))) throw busy(runDir, pid, host);
}

function busy(runDir: string, pid: number, host: string | undefined): PeanutError {
  return new PeanutError('E_BUSY', `${runDir} is in use by another training run (process ${pid}${host && host !== hostname() ? ` on ${host}` : ''}); wait for it to finish or choose another -o run directory`);
}

/**
 * Takes the run directory's lock, so a second run on the same directory fails at once instead of
 * interleaving its checkpoints with the first one's. A lock left by a run that no longer exists
 * (killed) is taken over; the temporary files such a run left behind are removed. Returns the
 * function that releases the lock.
 *
 * @throws PeanutError E_BUSY when another live run holds the directory.
 */
export function lockRunDir(runDir: string): () => void {
  const path = join(runDir, LOCK_FILE);
  const me = `${process.pid} ${hostname()}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    // The lock appears with its content in one step (a hard link to a finished temp file), so no
    // other run ever reads a lock without its owner.
    const tmp = tempPathFor(path);
    writeFileAtomic(tmp, new TextEncoder().encode(me));
    try {
      try {
        linkSync(tmp, path);
      } catch (err) {
        // File systems without hard links: an exclusive create, then the content.
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
        writeFileSync(path, me, { flag: 'wx' });
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(err, 'write', path);
      const [pidText, host] = readLock(path);
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 0 && (host !== hostname() || processAlive(pid))) throw busy(runDir, pid, host);
      // Left by a run that is gone: take it over.
      rmSync(path, { force: true });
      continue;
    } finally {
      rmSync(tmp, { force: true });
    }
    removeStaleTemps(runDir);
    return () => {
      if (readLock(path).join(' ') === me.trim()) rmSync(path, { force: true });
    };
  }
  throw new PeanutError('E_BUSY', `cannot take the lock of ${runDir} (${path}); remove it if no run is using the directory`);
}

function readLock(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
}

/** Temporary files of interrupted writes by processes that are gone, in the run directory and its checkpoints. */
function removeStaleTemps(runDir: string): void {
  for (const dir of [runDir, join(runDir, CHECKPOINT_DIR)]) removeDeadTemps(dir);
}

/**
 * `peanut-onnx average`: the weighted average of several checkpoints (files or run directories,
 * their latest; see train/average.ts), written atomically to `outPath` — never over one of them,
 * nor over a file that is not a checkpoint.
 */
export function averageCheckpoints(paths: readonly string[], outPath: string, weights?: readonly number[]): { path: string; from: string[] } {
  const files = paths.map(resolveCheckpoint);
  checkOutput(outPath, ...files);
  if (existsSync(outPath) && !isCheckpointFile(outPath)) {
    throw new PeanutError('E_OUTPUT_EXISTS', `-o ${outPath} exists and is not a peanut-onnx checkpoint; choose another path (files this command did not write are never overwritten)`);
  }
  const state = averageStates(files.map(loadCheckpoint), files, weights);
  writeCheckpointFile(outPath, state);
  return { path: outPath, from: files };
}

/** Whether `path` is a training checkpoint (so a later `average` may replace it). */
function isCheckpointFile(path: string): boolean {
  try {
    return parseSafetensors(readFileSync(path), path).metadata.format === CHECKPOINT_FORMAT;
  } catch {
    return false;
  }
}
