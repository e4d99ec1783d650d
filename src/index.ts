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
export { merge, mergedWeight, requireAdapter, readTargetWeight, type MergeOptions } from './peanut/merge.ts';
export { mergeWithRuntime } from './peanut/merge-ort.ts';
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
} from './interop/peft.ts';
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
} from './interop/peft-config.ts';
export type { AdapterMethod, ParamSpec, Layout } from './peanut/methods/method.ts';

// Training: artifacts, the fused AdamW step, the training loop
export { train, type TrainOptions, type TrainResult, type TrainEvent } from './train/trainer.ts';
export { buildArtifacts, writeArtifactsFor, type BuiltArtifacts } from './train/build.ts';
export { readArtifacts, ARTIFACT_FILES, DEFAULT_HYPERPARAMETERS, type Manifest, type LoadedArtifacts } from './train/artifacts.ts';
export { buildTrainingGraphs, TRAIN_OUTPUTS, EVAL_OUTPUTS, type GradModelLike, type TrainingGraphs, type TensorSpec } from './train/training-graph.ts';
export { emitAdamW, addAdamWInputs, adamWScalarFeeds, ADAMW_INPUTS, momentName, type AdamWParam, type AdamWInputNames, type AdamWResult, type AdamWStepHyper } from './train/adamw.ts';
export { saveCheckpoint, loadCheckpoint, latestCheckpoint, type TrainState, type Hyperparameters } from './train/checkpoint.ts';
export { learningRate, SCHEDULES, type ScheduleName, type ScheduleOptions } from './train/schedule.ts';
export { evaluate, type EvalMetrics } from './train/evaluate.ts';
export { TASK_NAMES, type TaskName } from './train/tasks.ts';
export { openExampleSet, type ExampleSet, type BatchTensor, type CollateSpec } from './data/example-set.ts';
export { loadTokenizer, type TextTokenizer } from './data/tokenize.ts';

// Autodiff: gradient models, loss heads, rules
export { buildGradModel, adapterParams, type GradModel, type GradModelOptions } from './autodiff/grad-model.ts';
export { runGradModel, feedsFromSafe, type GradRunResult } from './autodiff/grad-run.ts';
export { buildGradients, defaultOpset, type BuildGradientsOptions, type GradientResult } from './autodiff/gradient.ts';
export { probeShapes, type ShapeTable, type ValueShape, type ProbeOptions, type Feeds } from './autodiff/probe.ts';
export { createRegistry, defaultRegistry, NO_GRADIENT, type GradRegistry } from './autodiff/registry.ts';
export type { GradRule, GradContext, NoGradient, StaticShape } from './autodiff/rule.ts';
export { appendLossHead, findPrediction, TASKS, type Task, type LossHead, type LossHeadOptions } from './tasks/loss.ts';

// The quick-start job on the shipped model (`peanut-onnx demo`)
export { runDemo, DEMO_ASSETS, DEMO_DEFAULTS, type DemoOptions, type DemoResult, type DemoEvent } from './demo.ts';
