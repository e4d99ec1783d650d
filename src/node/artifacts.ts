/**
 * Artifact directories on disk (`peanut-onnx artifacts`, `train <dir>`): a training plan written
 * as files (names in train/manifest.ts), read back as what a run needs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { ARTIFACT_FILES, parseManifest, type Manifest } from '../train/manifest.ts';
import { buildTrainingPlan, headList, planInitialState, type RunGraphs, type TrainingPlan } from '../train/plan.ts';
import { assertNotInput, writeFileAtomic } from './atomic.ts';
import { loadModel, saveModel } from './model-files.ts';
import { assertNotModelSource, removeReplaced } from './model-data.ts';
import { checkCanCreateDir, ensureDir } from './output-paths.ts';
import { nodeRuntime } from './onnxruntime.ts';
import { loadCheckpoint, writeCheckpointFile } from './run-dir.ts';
import { sessionModel } from './session-model.ts';

/** Writes the artifact directory (each file atomically). */
export function writeArtifacts(dir: string, plan: TrainingPlan): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${dir} is a file; artifacts are written into a directory`);
  ensureDir(dir);
  const { graphs, baseDir } = plan;
  // The eval graph reads the same frozen weights as the train graph: when those go to external
  // data, the eval graph references the train graph's data file instead of a second copy. The
  // data files of artifacts written here before are removed only once neither graph uses them.
  const replaced: string[] = [];
  const trainData = saveModel({ proto: graphs.train, baseDir } satisfies OnnxModel, join(dir, ARTIFACT_FILES.train), { replaced });
  saveModel({ proto: graphs.eval, baseDir } satisfies OnnxModel, join(dir, ARTIFACT_FILES.eval), { replaced, ...(trainData ? { shareDataWith: trainData } : {}) });
  writeCheckpointFile(join(dir, ARTIFACT_FILES.checkpoint), planInitialState(plan));
  writeFileAtomic(join(dir, ARTIFACT_FILES.manifest), new TextEncoder().encode(`${JSON.stringify(plan.manifest, null, 2)}\n`));
  removeReplaced(replaced);
}

/**
 * `peanut-onnx artifacts`: builds the plan of an adapted model file and writes its directory.
 * The manifest's `warnings` name the targets left out (they do not reach the head's loss).
 */
export async function writeArtifactsFor(adaptedPath: string, outDir: string, opts: { task?: string; head?: string | readonly string[] }): Promise<Manifest> {
  assertNotInput(outDir, adaptedPath);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${outDir} is a file; artifacts are written into a directory`);
  checkCanCreateDir(outDir);
  const adapted = loadModel(adaptedPath);
  // Neither the adapted model nor its external data may be one of the files written.
  for (const f of Object.values(ARTIFACT_FILES)) {
    assertNotInput(join(outDir, f), adaptedPath);
    assertNotModelSource(adapted, join(outDir, f));
  }
  const heads = headList(opts.head);
  const plan = await buildTrainingPlan(nodeRuntime, adapted, { ...(opts.task !== undefined ? { task: opts.task } : {}), ...(heads ? { heads } : {}) });
  writeArtifacts(resolve(outDir), plan);
  return plan.manifest;
}

export interface LoadedArtifacts {
  dir: string;
  manifest: Manifest;
  trainPath: string;
  evalPath: string;
  checkpointPath: string;
}

/** Reads and checks an artifact directory. */
export function readArtifacts(dir: string): LoadedArtifacts {
  const manifestPath = join(dir, ARTIFACT_FILES.manifest);
  if (!existsSync(manifestPath)) {
    throw new PeanutError('E_FILE_NOT_FOUND', `${dir} has no ${ARTIFACT_FILES.manifest}; create training artifacts with \`peanut-onnx artifacts <adapted.onnx> --task <task> -o ${dir}\` or pass an adapted .onnx`);
  }
  const manifest = parseManifest(readFileSync(manifestPath, 'utf8'), manifestPath, dir);
  const files = { trainPath: join(dir, ARTIFACT_FILES.train), evalPath: join(dir, ARTIFACT_FILES.eval), checkpointPath: join(dir, ARTIFACT_FILES.checkpoint) };
  for (const f of Object.values(files)) if (!existsSync(f)) throw new PeanutError('E_FILE_NOT_FOUND', `artifact file missing: ${f} (re-run \`peanut-onnx artifacts\`)`);
  // ONNX Runtime opens these graphs from their files and reads their external data itself: they
  // get the same checks as any model first (tensors, and data files inside the folder).
  loadModel(files.trainPath);
  loadModel(files.evalPath);
  return { dir, manifest, ...files };
}

/**
 * What `train <source>` runs: an artifact directory's files, or the plan of an adapted .onnx built
 * in memory (never written to disk; frozen weights in external data stay in their files).
 */
export async function loadRunGraphs(source: string, task: string | undefined, heads?: readonly string[]): Promise<RunGraphs> {
  if (!existsSync(source)) throw new PeanutError('E_FILE_NOT_FOUND', `not found: ${source} (pass an artifact directory or an adapted .onnx)`);
  if (statSync(source).isDirectory()) {
    const a = readArtifacts(source);
    if (task && task !== a.manifest.task) {
      throw new PeanutError('E_BAD_CONFIG', `--task ${task} does not match the artifacts, which were built for '${a.manifest.task}'; rebuild them with \`peanut-onnx artifacts --task ${task}\``);
    }
    if (heads?.length && a.manifest.heads.length && heads.join() !== a.manifest.heads.join()) {
      throw new PeanutError('E_BAD_CONFIG', `--head ${heads.join(',')} does not match the artifacts, which read ${a.manifest.heads.join(',')}; rebuild them with \`peanut-onnx artifacts --head ${heads.join(',')}\``);
    }
    return { manifest: a.manifest, train: a.trainPath, eval: a.evalPath, init: loadCheckpoint(a.checkpointPath) };
  }
  const adapted = loadModel(source);
  const plan = await buildTrainingPlan(nodeRuntime, adapted, { ...(task !== undefined ? { task } : {}), ...(heads?.length ? { heads } : {}) });
  return planToSessionRun(plan);
}

/**
 * A plan as a run on Node takes it: each graph encoded by `sessionModel`, so the frozen weights
 * stay in their files until ONNX Runtime reads them (no copy of them in JS memory for the run).
 */
export function planToSessionRun(plan: TrainingPlan): RunGraphs {
  const train = sessionModel({ proto: plan.graphs.train, baseDir: plan.baseDir });
  const evalGraph = sessionModel({ proto: plan.graphs.eval, baseDir: plan.baseDir });
  const files = new Map([...train.externalData, ...evalGraph.externalData].map((f) => [f.path, f.data]));
  return {
    manifest: plan.manifest,
    train: train.model,
    eval: evalGraph.model,
    init: planInitialState(plan),
    ...(files.size ? { externalData: [...files].map(([path, data]) => ({ path, data })) } : {}),
  };
}
