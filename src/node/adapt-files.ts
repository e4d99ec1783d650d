/**
 * inject and merge on files (`peanut-onnx inject`, `peanut-onnx merge`): the in-memory passes of
 * src/adapter/ with their inputs read from, and outputs written to, paths — every path checked
 * before any work, every output written atomically.
 */
import type { AdapterMeta } from '../adapter/adapter-meta.ts';
import { resolveMethodConfig, resolveSeed } from '../adapter/config.ts';
import { inject, type InjectOptions, type InjectResult } from '../adapter/inject.ts';
import { isZeroDelta, merge, mergeState, requireAdapter, type MergeOptions } from '../adapter/merge.ts';
import { checkSameBase } from '../adapter/fingerprint.ts';
import { ADAPTER_META_KEY, parseAdapterSummary } from '../adapter/adapter-meta.ts';
import { stateFromTensors } from '../adapter/state.ts';
import type { TweakerState } from '../adapter/state.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import { parseMomentName } from '../formats/checkpoint-keys.ts';
import { countParameters, type OnnxModel } from '../onnx/model.ts';
import { mergeWithRuntime } from '../runtime/merge-ort.ts';
import { checkModelLoads } from '../runtime/load-check.ts';
import { loadModel, saveModel } from './model-files.ts';
import { nodeRuntime } from './onnxruntime.ts';
import { checkOutput } from './output-paths.ts';
import { resolveCheckpoint } from './run-dir.ts';
import { readSafetensors } from './safetensors-files.ts';
import { writeTweakerState } from './tweaker-files.ts';

/**
 * Parameter values to start from, read from a tweaker file, a training checkpoint, a run
 * directory (its latest checkpoint) or an artifact directory; optimizer moments are left out.
 */
export function readInitTensors(path: string): { tensors: Map<string, SafeTensor>; file: string } {
  const file = resolveCheckpoint(path);
  const { tensors } = readSafetensors(file);
  return { tensors: new Map([...tensors].filter(([k]) => !parseMomentName(k))), file };
}

export interface InjectFileOptions extends Omit<InjectOptions, 'init' | 'initName'> {
  /** Start from these values: a tweaker file, a checkpoint, a run or artifact directory. */
  init?: string;
  /** Also write the parameter values used to this tweaker file. */
  saveTweaker?: string;
}

export interface InjectFileResult extends InjectResult {
  /** Parameters the adapter adds (all trainable) and parameters of the model it adapts. */
  trainableParams: number;
  baseParams: number;
}

/**
 * Adapts the model at `modelPath` and writes the adapted model to `outPath`, once ONNX Runtime
 * has shown it loads the result (`checkModelLoads`).
 */
export async function injectFile(modelPath: string, outPath: string, opts: InjectFileOptions = {}): Promise<InjectFileResult> {
  // Validate the configuration and the outputs before touching any file.
  resolveMethodConfig(opts);
  resolveSeed(opts.seed);
  checkOutput(outPath, modelPath, opts.init);
  if (opts.saveTweaker) checkOutput(opts.saveTweaker, modelPath, opts.init, outPath);
  const model = loadModel(modelPath);
  const { init: initPath, saveTweaker: _, ...options } = opts;
  const init = initPath ? readInitTensors(initPath) : undefined;
  const result = inject(model, { ...options, ...(init ? { init: init.tensors, initName: init.file } : {}) });
  await checkModelLoads(nodeRuntime, result.model, 'the adapted model');
  saveModel(result.model, outPath);
  if (opts.saveTweaker) writeTweakerState(opts.saveTweaker, result.meta, result.state);
  const trainableParams = [...result.state.values()].reduce((s, v) => s + v.length, 0);
  return { ...result, trainableParams, baseParams: countParameters(model) };
}

/**
 * θ for an adapted model from a checkpoint file, a tweaker file, or a run or artifact directory,
 * checked to have been trained on the same base weights (the fingerprints the file's adapter
 * summary records, where it records them).
 *
 * @throws PeanutError E_BASE_MISMATCH for parameters of another base model; E_BAD_SAFETENSORS
 */
export function loadParams(path: string, meta: AdapterMeta, modelPath = 'the adapted model'): { params: TweakerState; file: string; unchecked: number } {
  const file = resolveCheckpoint(path);
  const { tensors, metadata } = readSafetensors(file);
  const summary = parseAdapterSummary(metadata.peanut ?? metadata[ADAPTER_META_KEY], file);
  const { unchecked } = checkSameBase(meta, summary, file, modelPath);
  const params = stateFromTensors(tensors, meta.targets.flatMap((t) => t.params), { what: file, allowExtra: true });
  return { params, file, unchecked };
}

export interface MergeFileOptions extends Pick<MergeOptions, 'safe'> {
  /** Parameter values to merge: a checkpoint or tweaker file, or a run directory (its latest checkpoint). */
  checkpoint?: string;
  /** Where ΔW is computed: `js` (default, streamed into the output) or `ort` (the adapter's own nodes in ONNX Runtime). */
  engine?: 'js' | 'ort';
}

export interface MergeFileResult {
  merged: OnnxModel;
  meta: AdapterMeta;
  /** Where the parameters came from: the checkpoint file, or the adapted model itself. */
  paramsFrom: string;
  /** The parameters give ΔW = 0 (an untrained adapter): the merged weights equal the original ones. */
  zeroDelta: boolean;
  /** Targets whose base weights could not be compared with the checkpoint's (a file from before fingerprints). */
  unchecked: number;
}

/** Merges the adapted model at `modelPath` and writes the merged model to `outPath` (checked to load in ONNX Runtime). */
export async function mergeFile(modelPath: string, outPath: string, opts: MergeFileOptions = {}): Promise<MergeFileResult> {
  checkOutput(outPath, modelPath, opts.checkpoint);
  const model = loadModel(modelPath);
  const meta = requireAdapter(model);
  const loaded = opts.checkpoint ? loadParams(opts.checkpoint, meta, modelPath) : undefined;
  const mergeOpts = { ...(loaded ? { params: loaded.params } : {}), safe: opts.safe ?? false };
  const zeroDelta = isZeroDelta(meta, mergeState(model, meta, mergeOpts));
  // The JS engine streams: each merged weight is computed as saveModel writes it.
  const merged = opts.engine === 'ort' ? await mergeWithRuntime(nodeRuntime, model, mergeOpts) : merge(model, { ...mergeOpts, stream: true });
  await checkModelLoads(nodeRuntime, merged, 'the merged model');
  saveModel(merged, outPath);
  return { merged, meta, paramsFrom: loaded?.file ?? 'the adapted model', zeroDelta, unchecked: loaded?.unchecked ?? 0 };
}
