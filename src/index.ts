/**
 * peanut-onnx public API: fine-tune ONNX models with PEANuT (W = W0 + f(W0; θ)).
 *
 * @packageDocumentation
 */
export { PeanutError, UsageError, type PeanutErrorCode } from './errors.ts';
export { loadModel, saveModel, type SaveOptions } from './node/model-files.ts';
export { type OnnxModel } from './onnx/model.ts';
export { readSafetensors, writeSafetensors, type SafeTensor, type SafeFile } from './formats/safetensors.ts';
export { Random, seededPermutation, hashString } from './util/random.ts';

// PEANuT: discovery, injection, merge
export { discoverTargets, parseTargets, selectCandidates, moduleMatches, type Candidate, type Skipped, type Discovery, type TargetSpec } from './adapter/targets.ts';
export { modulePathFor } from './adapter/module-path.ts';
export { ARCHITECTURES, detectArchitecture, defaultTargets, type Architecture } from './adapter/architectures.ts';
export { selectTargets, type Selection } from './adapter/select.ts';
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
} from './adapter/config.ts';
export { inject, initParam, isAdapted, type InjectOptions, type InjectResult } from './adapter/inject.ts';
export { merge, mergedWeight, requireAdapter, readTargetWeight, type MergeOptions } from './adapter/merge.ts';
export { mergeWithRuntime } from './runtime/merge-ort.ts';
export { inspectModel, formatInspectReport, type InspectReport, type InspectOptions } from './adapter/inspect.ts';
export { ADAPTER_META_KEY, readAdapterMeta, writeAdapterMeta, paramNames, type AdapterMeta, type AdapterTarget, type AdapterParam } from './adapter/adapter-meta.ts';
export {
  stateFromTensors,
  stateFromModel,
  stateToTensors,
  readTweakerState,
  writeTweakerState,
  resolveCheckpoint,
  type TweakerState,
} from './adapter/state.ts';
export { methodFor } from './adapter/methods/index.ts';

// Hugging Face PEFT adapters in and out
export {
  exportPeft,
  importPeft,
  readPeftAdapter,
  readAdapterSource,
  peftTensors,
  type AdapterSource,
  type ExportPeftOptions,
  type ExportPeftResult,
  type ImportPeftOptions,
  type ImportPeftResult,
  type PeftAdapter,
} from './interop/peft/adapter.ts';
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  PEFT_KEY_PREFIX,
  PEFT_VERSION,
  PEANUT_CONFIG_FIELDS,
  parsePeftConfig,
  peftConfigFor,
  peftTargetModules,
  type ParsedPeftConfig,
  type PeftConfigOptions,
  type PeftTargetModules,
} from './interop/peft/config.ts';
export type { AdapterMethod, ParamSpec, Layout } from './adapter/methods/method.ts';

// Training: artifacts, the fused AdamW step, the training loop
export { train, type TrainOptions, type TrainResult, type TrainEvent } from './train/trainer.ts';
export { buildArtifacts, writeArtifactsFor, type BuiltArtifacts } from './train/build.ts';
export { readArtifacts, ARTIFACT_FILES, DEFAULT_HYPERPARAMETERS, type Manifest, type LoadedArtifacts } from './train/artifacts.ts';
export { buildTrainingGraphs, TRAIN_OUTPUTS, EVAL_OUTPUTS, type GradModelLike, type TrainingGraphs, type TensorSpec } from './train/training-graph.ts';
export { emitAdamW, addAdamWInputs, ADAMW_INPUTS, momentName, type AdamWParam, type AdamWInputNames, type AdamWResult } from './train/adamw.ts';
export { saveCheckpoint, loadCheckpoint, latestCheckpoint, type TrainState, type Hyperparameters } from './train/checkpoint.ts';
export { learningRate, SCHEDULES, type ScheduleName, type ScheduleOptions } from './train/schedule.ts';
export { evaluate, type EvalMetrics } from './train/evaluate.ts';
export { TASK_NAMES, type TaskName } from './train/tasks.ts';
export { openExampleSet, type ExampleSet, type BatchTensor, type CollateSpec } from './data/example-set.ts';
export { loadTokenizer, type TextTokenizer } from './data/tokenize.ts';

// Autodiff: gradient models, loss heads, rules
export { buildGradModel, adapterParams, type GradModel, type GradModelOptions } from './train/grad-model.ts';
export { runGradModel, feedsFromSafe, type GradRunResult } from './train/grad-run.ts';
export { buildGradients, type BuildGradientsOptions, type GradientResult } from './autodiff/gradient.ts';
export { probeShapes, type ShapeTable, type ValueShape, type ProbeOptions, type Feeds } from './runtime/probe.ts';
export { createRegistry, defaultRegistry, NO_GRADIENT, type GradRegistry } from './autodiff/registry.ts';
export type { GradRule, GradContext, NoGradient, StaticShape } from './autodiff/rule.ts';
export { appendLossHead, findPrediction, TASKS, type Task, type LossHead, type LossHeadOptions } from './train/loss.ts';

// The quick-start job on the shipped model (`peanut-onnx demo`)
export { runDemo, DEMO_ASSETS, DEMO_DEFAULTS, type DemoOptions, type DemoResult, type DemoEvent } from './demo.ts';
