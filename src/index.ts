/**
 * peanut-onnx public API: fine-tune ONNX models with PEANuT (W = W0 + f(W0; θ)).
 *
 * @packageDocumentation
 */
export { PeanutError, UsageError, type PeanutErrorCode } from './errors.ts';
export { loadModel, saveModel, type OnnxModel, type SaveOptions } from './onnx/io.ts';
export { readSafetensors, writeSafetensors, type SafeTensor, type SafeFile } from './safetensors.ts';
export { Random, seededPermutation, hashString } from './util/random.ts';

// PEANuT: discovery, injection, merge
export { discoverTargets, parseTargets, selectCandidates, moduleMatches, type Candidate, type Skipped, type Discovery, type TargetSpec } from './peanut/targets.ts';
export { modulePathFor } from './peanut/module-path.ts';
export { ARCHITECTURES, detectArchitecture, defaultTargets, type Architecture } from './peanut/architectures.ts';
export { selectTargets, type Selection } from './peanut/select.ts';
export {
  ACTIVATIONS,
  METHODS,
  DEFAULTS,
  resolveMethodConfig,
  resolveActivation,
  type Activation,
  type MethodConfig,
  type PeanutConfig,
  type LoraConfig,
} from './peanut/config.ts';
export { inject, initParam, isAdapted, type InjectOptions, type InjectResult } from './peanut/inject.ts';
export { merge, mergedWeight, requireAdapter, type MergeOptions } from './peanut/merge.ts';
export { inspectModel, formatInspectReport, type InspectReport, type InspectOptions } from './peanut/inspect.ts';
export { ADAPTER_META_KEY, readAdapterMeta, writeAdapterMeta, paramNames, type AdapterMeta, type AdapterTarget, type AdapterParam } from './peanut/adapter-meta.ts';
export {
  stateFromTensors,
  stateFromModel,
  stateToTensors,
  readTweakerState,
  writeTweakerState,
  resolveCheckpoint,
  type TweakerState,
} from './peanut/state.ts';
export { methodFor } from './peanut/methods/index.ts';
export type { AdapterMethod, ParamSpec, Layout } from './peanut/methods/method.ts';
