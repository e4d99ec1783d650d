/**
 * `train()` on Node, behind `peanut-onnx train`: the training loop (src/train/loop.ts) with its
 * graphs, data, checkpoints and metrics log in files. The run directory is locked for the run;
 * its checkpoints go to `checkpoints/step-<N>.safetensors` (src/node/run-dir.ts) and its metrics
 * to `metrics.jsonl`, one JSON object a line.
 */
import { appendFileSync, closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import type { ScheduleName } from '../train/schedule.ts';
import { runTraining, type LoopResult, type TrainEvent } from '../train/loop.ts';
import { checkResumable, resolveRun, type RunSettings } from '../train/run-config.ts';
import type { TrainState } from '../train/checkpoint.ts';
import { assertNotInput, removeDeadTemps, withFileErrors, writeFileAtomic } from './atomic.ts';
import { checkCanCreateDir, ensureDir } from './output-paths.ts';
import { headList, type RunGraphs } from '../train/plan.ts';
import { loadRunGraphs } from './artifacts.ts';
import { loadTokenizer, openExampleSet } from './data-files.ts';
import { nodeRuntime, type EpChoice } from './onnxruntime.ts';
import { assertRunDirFree, latestCheckpoint, loadCheckpoint, lockRunDir, METRICS_FILE, CHECKPOINT_DIR, pruneCheckpoints, saveCheckpoint } from './run-dir.ts';

export type { TrainEvent };

export interface TrainOptions extends RunSettings {
  /** Training data (.jsonl or .safetensors). */
  data: string;
  /** Run directory: checkpoints/ and metrics.jsonl go here. */
  outDir: string;
  /** Evaluation data. */
  eval?: string;
  /** Task; required when training straight from an adapted .onnx, checked against the manifest otherwise. */
  task?: string;
  /**
   * The graph output(s) holding the predictions (`--head`): names, or one comma-separated string.
   * Default: the task's (`logits`; `start_logits,end_logits` for qa). Checked against the manifest
   * of an artifact directory.
   */
  head?: string | readonly string[];
  /** Number of epochs (default 1 when `steps` is not given). */
  epochs?: number;
  /** Number of optimizer steps (overrides `epochs`). */
  steps?: number;
  schedule?: ScheduleName;
  ep?: EpChoice;
  /** Intra-op threads (default: ONNX Runtime's choice). */
  threads?: number;
  /** Continue from the latest checkpoint in `outDir`. */
  resume?: boolean;
  /** With `resume`: continue even when settings differ from the checkpoint's (they are reported). */
  force?: boolean;
  /** Metrics log (default `<outDir>/metrics.jsonl`). */
  log?: string;
  /** Save a checkpoint every N steps (0 = only at the end). Default 500. */
  saveEvery?: number;
  /** Keep only the newest N checkpoints, deleting older ones after each save (default: keep all). */
  keepCheckpoints?: number;
  /** Evaluate every N steps (0 = only at the start and the end). Default 0. */
  evalEvery?: number;
  /** tokenizer.json for JSONL examples that carry `text`. */
  tokenizer?: string;
  /** Truncate JSONL sequences to this many tokens. */
  maxLength?: number;
  /** Stop cleanly (checkpoint saved) at the next step boundary when aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** Progress and log events. */
  onEvent?: (e: TrainEvent) => void;
  /**
   * Extra onnxruntime session options for the training sessions, passed through as they are
   * (e.g. `{ extra: { session: { disable_prepacking: '0' } } }`: faster steps, more memory;
   * docs/training.md, "Session options").
   */
  sessionOptions?: Readonly<Record<string, unknown>>;
}

export interface TrainResult extends Omit<LoopResult, 'ep' | 'state'> {
  /** Execution provider used. */
  ep: 'cpu' | 'cuda';
  /** Final θ (PEFT keys). */
  params: Map<string, SafeTensor>;
  metricsLog: string;
  /** On a resume with `force`: the settings that changed. */
  changed: string[];
}

const DEFAULT_SAVE_EVERY = 500;

/** Rewrites the metrics log keeping only lines at or before `step` (after a resume). */
function truncateLog(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step?: number }).step! <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, new TextEncoder().encode(kept.map((l) => `${l}\n`).join('')));
}

/**
 * Refuses a metrics log path that would destroy something: one of the run's inputs (`inputs`,
 * checked by file identity), a folder, or an existing file that is not a metrics log (a log is
 * replaced by a fresh run and truncated by a resumed one, so only a log may be there).
 */
function checkLogPath(logPath: string, inputs: ReadonlyArray<string | undefined>): void {
  assertNotInput(logPath, ...inputs);
  if (!existsSync(logPath)) return;
  if (statSync(logPath).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `--log ${logPath} is a directory; give a file path for the metrics log`);
  const head = readHead(logPath);
  const first = head.split('\n').find((l) => l.trim() !== '');
  if (first === undefined) return;
  let line: unknown;
  try {
    line = JSON.parse(first);
  } catch {
    line = undefined;
  }
  if (!line || typeof line !== 'object' || typeof (line as { step?: unknown }).step !== 'number') {
    throw new PeanutError('E_OUTPUT_EXISTS', `--log ${logPath} exists and is not a metrics log; choose another path (files a run did not write are never overwritten)`);
  }
}

function readHead(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(64 * 1024);
    const n = readSync(fd, buf, 0, buf.byteLength, 0);
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** Every file `train` reads from `source`: the model and its data files, or an artifact directory's files. */
function sourceInputs(source: string, graphs: RunGraphs): string[] {
  const files = [source, ...(graphs.externalData ?? []).flatMap((f) => (typeof f.data === 'string' ? [f.data] : []))];
  if (statSync(source).isDirectory()) for (const f of readdirSync(source)) files.push(join(source, f));
  return files;
}

/** Removes the metrics log and the (empty) run directory a failed run created. */
function removeCreated(outDir: string, logPath: string, createdDir: boolean, createdLog: boolean): void {
  if (createdLog) rmSync(logPath, { force: true });
  if (!createdDir) return;
  for (const dir of [join(outDir, CHECKPOINT_DIR), outDir]) {
    try {
      rmdirSync(dir);
    } catch {
      /* not empty or not there: left as it is */
    }
  }
}

/**
 * Fine-tunes the tweaker parameters. Everything is checked before anything is written (the
 * source, the data, the settings, the log path); the run directory is then created and locked
 * for the run (`E_BUSY` for a second run on it). When aborted (`signal`) the step in flight
 * finishes and a checkpoint is saved; a failure mid-run (a bad batch, a non-finite loss) saves
 * the last good state before it is reported.
 *
 * @param source - an artifact directory (from `artifacts`) or an adapted .onnx.
 * @param options - data, run directory and hyper-parameters; see `TrainOptions`.
 * @throws PeanutError E_BUSY, E_OUTPUT_EXISTS, E_BAD_CONFIG (settings changed on a resume without
 *   `force`), E_BASE_MISMATCH (a resume over other base weights), and the errors of its inputs
 */
export async function train(source: string, options: TrainOptions): Promise<TrainResult> {
  const outDir = resolve(options.outDir);
  const logPath = resolve(options.log ?? join(outDir, METRICS_FILE));
  // The log is the only file written outside checkpoints/: never over an input.
  assertNotInput(logPath, source, options.data, options.eval, options.tokenizer);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${options.outDir} is a file; the run directory must be a directory`);
  assertRunDirFree(outDir);
  const before = latestCheckpoint(outDir);
  if (options.resume && !before) throw new PeanutError('E_FILE_NOT_FOUND', `nothing to resume: ${join(outDir, CHECKPOINT_DIR)} holds no checkpoint; start the run without --resume`);
  if (!options.resume && before) throw new PeanutError('E_OUTPUT_EXISTS', `${outDir} already holds checkpoints (latest step ${before.step}); continue it with --resume, or choose a new -o run directory`);

  // ---- inputs, all read and checked before anything is written ---------------------------------
  const graphs = await loadRunGraphs(source, options.task, headList(options.head));
  const { manifest } = graphs;
  const tokenizer = options.tokenizer ? loadTokenizer(options.tokenizer) : undefined;
  const data = openExampleSet(options.data, { tokenizer });
  const evalData = options.eval ? openExampleSet(options.eval, { tokenizer }) : undefined;
  // Every example checked against the model before anything is written.
  const check = { inputs: manifest.train.inputs.data, labels: manifest.labels, task: manifest.task, bounds: manifest.bounds, ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}) };
  data.check(check);
  evalData?.check({ ...check, inputs: manifest.eval.inputs.data });
  checkLogPath(logPath, [...sourceInputs(source, graphs), options.data, options.eval, options.tokenizer]);
  if (!options.resume) resolveRun(manifest.hyperparameters, options, data.size);
  checkCanCreateDir(outDir);
  checkCanCreateDir(dirname(logPath));

  const createdDir = !existsSync(outDir);
  const createdLog = !existsSync(logPath);
  ensureDir(outDir);
  const unlock = lockRunDir(outDir);
  try {
    // ---- state: fresh or resumed (read again under the lock) -------------------------------------
    let state: TrainState;
    let resumedFrom: string | undefined;
    const latest = latestCheckpoint(outDir);
    if (options.resume) {
      if (!latest) throw new PeanutError('E_FILE_NOT_FOUND', `nothing to resume: ${join(outDir, CHECKPOINT_DIR)} holds no checkpoint; start the run without --resume`);
      state = loadCheckpoint(latest.path);
      resumedFrom = latest.path;
      checkResumable(manifest, state, latest.path, source);
    } else {
      if (latest) throw new PeanutError('E_OUTPUT_EXISTS', `${outDir} already holds checkpoints (latest step ${latest.step}); continue it with --resume, or choose a new -o run directory`);
      state = graphs.init;
    }

    // ---- settings --------------------------------------------------------------------------------
    const run = resolveRun(manifest.hyperparameters, options, data.size, options.resume ? state : undefined, options.force);

    // ---- metrics log ----------------------------------------------------------------------------
    ensureDir(dirname(logPath));
    removeDeadTemps(dirname(logPath), basename(logPath));
    if (options.resume) truncateLog(logPath, state.step);
    else writeFileAtomic(logPath, new Uint8Array(0));

    const r = await runTraining(nodeRuntime, graphs, {
      data,
      ...(evalData ? { eval: evalData } : {}),
      state,
      hyper: run.hyper,
      stepsPerEpoch: run.stepsPerEpoch,
      ep: options.ep ?? 'auto',
      ...(options.threads ? { threads: options.threads } : {}),
      ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}),
      ...(options.sessionOptions ? { sessionExtra: options.sessionOptions } : {}),
      saveEvery: options.saveEvery ?? DEFAULT_SAVE_EVERY,
      evalEvery: options.evalEvery ?? 0,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(resumedFrom ? { resumedFrom } : {}),
      save: (s) => {
        const path = saveCheckpoint(outDir, s);
        if (options.keepCheckpoints) pruneCheckpoints(outDir, options.keepCheckpoints);
        return path;
      },
      log: (line) => withFileErrors('write', logPath, () => appendFileSync(logPath, `${JSON.stringify(line)}\n`)),
    });
    const { state: final, ep, ...rest } = r;
    return { ...rest, ep: ep as 'cpu' | 'cuda', params: final.params, metricsLog: logPath, changed: run.changed };
  } catch (err) {
    // A run that failed before its first checkpoint (a model ONNX Runtime refuses, a bad first
    // batch) leaves nothing behind: what it created is removed again.
    if (!latestCheckpoint(outDir)) {
      unlock();
      removeCreated(outDir, logPath, createdDir, createdLog);
    }
    throw err;
  } finally {
    unlock();
  }
}
