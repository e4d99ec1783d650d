/**
 * Adapted model → training graphs, manifest and initial θ: what `artifacts` writes to disk and
 * what `train <adapted.onnx>` builds in memory.
 */
import { resolve } from 'node:path';
import { PeanutError } from '../errors.ts';
import { encodeModel, graphOf, type OnnxModel } from '../onnx/model.ts';
import { externalDataFiles, loadModel } from '../node/model-files.ts';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor.ts';
import { readAdapterMeta } from '../adapter/adapter-meta.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import { initialState, makeManifest, writeArtifacts, type Manifest } from './artifacts.ts';
import type { TrainState } from './checkpoint.ts';
import { buildGradModel } from './grad-model.ts';
import { buildTrainingGraphs, type TrainingGraphs } from './training-graph.ts';
import { TASK_NAMES, type TaskName } from './tasks.ts';

export { TASK_NAMES, type TaskName };

export interface BuiltArtifacts {
  graphs: TrainingGraphs;
  manifest: Manifest;
  /** Initial θ (PEFT keys), from the adapted model's initializers. */
  params: Map<string, SafeTensor>;
  baseDir: string;
}

function checkTask(task: string | undefined): TaskName {
  if (!task) throw new PeanutError('E_BAD_CONFIG', `--task is required to build training graphs; one of ${TASK_NAMES.join(', ')}`);
  if (!(TASK_NAMES as readonly string[]).includes(task)) throw new PeanutError('E_BAD_CONFIG', `unknown task '${task}'; valid: ${TASK_NAMES.join(', ')}`);
  return task as TaskName;
}

/**
 * Builds the training artifacts of an adapted model.
 *
 * @param adapted - a model written by `inject` (θ as initializers, adapter metadata present).
 */
export async function buildArtifacts(adapted: OnnxModel, opts: { task?: string }): Promise<BuiltArtifacts> {
  const task = checkTask(opts.task);
  const meta = readAdapterMeta(adapted);
  if (!meta || meta.targets.length === 0) {
    throw new PeanutError('E_NOT_ADAPTED', `${adapted.path ?? 'the model'} has no tweakers; run \`peanut-onnx inject\` first and pass the adapted model`);
  }
  // θ values are read before the gradient model turns those initializers into inputs.
  const inits = new Map(graphOf(adapted).initializer.map((t) => [t.name, t]));
  const params = new Map<string, SafeTensor>();
  for (const p of meta.targets.flatMap((t) => t.params)) {
    const t = inits.get(p.name);
    if (!t) throw new PeanutError('E_NOT_ADAPTED', `adapted model has no initializer '${p.name}'`);
    params.set(p.name, { dtype: 'F32', shape: tensorDims(t), data: tensorToFloat32(t, adapted.baseDir) });
  }
  const grad = await buildGradModel(adapted, { task });
  const graphs = buildTrainingGraphs(grad);
  for (const p of graphs.io.params) if (!params.has(p.name)) throw new PeanutError('E_GRAPH', `gradient graph parameter '${p.name}' is not a tweaker parameter of the adapted model`);
  const peanut = { config: meta.config, targetModules: meta.targetModules, modules: Object.fromEntries(meta.targets.map((t) => [t.module, { node: t.node, weight: t.weight, op: t.op, in: t.in, out: t.out }])) };
  const manifest = makeManifest(graphs, task, peanut, adapted.path ?? null);
  return { graphs, manifest, params: new Map(graphs.io.params.map((p) => [p.name, params.get(p.name)!])), baseDir: adapted.baseDir };
}

/** `peanut-onnx artifacts`: builds and writes the artifact directory. */
export async function writeArtifactsFor(adaptedPath: string, outDir: string, opts: { task?: string }): Promise<Manifest> {
  const adapted = loadModel(adaptedPath);
  const built = await buildArtifacts(adapted, opts);
  writeArtifacts(resolve(outDir), built.graphs, built.manifest, built.params, built.baseDir);
  return built.manifest;
}

/** For `train <adapted.onnx>`: the graphs as bytes, never written to disk. */
export async function buildArtifactsInMemory(
  adaptedPath: string,
  opts: { task?: string },
): Promise<{ manifest: Manifest; train: Uint8Array; eval: Uint8Array; init: TrainState; externalData?: Array<{ path: string; data: string }> }> {
  const adapted = loadModel(adaptedPath);
  const built = await buildArtifacts(adapted, opts);
  // Frozen weights in external data stay in their files: the graphs reference them by location,
  // and the sessions read them from the adapted model's directory.
  const files = externalDataFiles(adapted);
  return {
    manifest: built.manifest,
    train: encodeModel(built.graphs.train),
    eval: encodeModel(built.graphs.eval),
    init: initialState(built.params, built.manifest),
    ...(files.length ? { externalData: files } : {}),
  };
}
