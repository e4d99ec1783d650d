/**
 * peanut-onnx on Node: fine-tune ONNX models with PEANuT (W = W0 + f(W0; θ)) or LoRA, with
 * ONNX Runtime (onnxruntime-node) and files on disk. The same pipeline on bytes, for browsers and
 * other JS runtimes, is `peanut-onnx/web`; what gradient-rule authors need is `peanut-onnx/rules`.
 *
 * @packageDocumentation
 */
import './node/files.ts';

// Errors and choices
export { PeanutError, type PeanutErrorCode } from './errors.ts';
export { VERSION } from './version.ts';
export { CHOICES } from './choices.ts';

// Models: load, save, check where outputs go
export { loadModel, saveModel, type SaveOptions } from './node/model-files.ts';
export { encodeModel, type OnnxModel } from './onnx/model.ts';
export { checkOutput } from './node/output-paths.ts';

// Adapters: inspect, inject, merge (in memory and on files)
export { inspectModel, formatInspectReport, type InspectReport } from './adapter/inspect.ts';
export { inject, type InjectOptions, type InjectResult } from './adapter/inject.ts';
export { merge, type MergeOptions } from './adapter/merge.ts';
export { injectFile, mergeFile, loadParams, type InjectFileOptions, type MergeFileOptions } from './node/adapt-files.ts';
export type { AdapterMeta } from './adapter/adapter-meta.ts';

// Training
export { train, type TrainOptions, type TrainResult, type TrainEvent } from './node/train.ts';
export { writeArtifactsFor as writeArtifacts } from './node/artifacts.ts';
export { loadCheckpoint as readCheckpoint, averageCheckpoints } from './node/run-dir.ts';
export type { TrainState } from './train/checkpoint.ts';
export { readBatches } from './node/batches.ts';

// Hugging Face PEFT adapters in and out
export { exportPeft, importPeftFile, readPeftAdapter } from './node/peft-files.ts';

// Gradients of adapted models
export { computeGradients } from './node/gradients.ts';
export { buildGradModel, type GradModel } from './train/grad-model.ts';
export { runGradModel } from './train/grad-run.ts';

// The ONNX Runtime the functions above run on
export { nodeRuntime } from './node/onnxruntime.ts';
export type { Runtime, Session } from './runtime/session.ts';
export type { HostTensor, Feeds } from './runtime/tensors.ts';
