/**
 * `peanut-onnx/web`: the whole pipeline on bytes, for browsers and any JS runtime — inject, train,
 * merge, PEFT export — with the same options, defaults and results as the Node library. It imports
 * no ONNX Runtime: the caller passes its own `ort` module (onnxruntime-web's `ort.wasm` or
 * `ort.webgpu` build) to the functions that run models. Nothing here touches files; models,
 * checkpoints and adapters go in and out as `Uint8Array`s.
 *
 * ```js
 * import * as ort from 'onnxruntime-web/webgpu';
 * import { inject, train, merge, exportPeft } from 'peanut-onnx/web';
 * const { model } = inject(baseBytes, { r: 8, targets: 'query,value' });
 * const run = await train({ ort, model, task: 'seq-cls', data: jsonlText, lr: 3e-3, onEvent: console.log });
 * const merged = merge({ model, checkpoint: run.checkpoint });   // a plain .onnx, as `peanut-onnx merge` writes
 * ```
 *
 * Checkpoints are the CLI's format: one from a page is accepted by `peanut-onnx merge
 * --checkpoint`, `export-peft` and `train --resume`, and the CLI's are accepted here.
 *
 * @packageDocumentation
 */
import { PeanutError } from './errors.ts';
import { parseSafetensors, type SafeTensor } from './formats/safetensors.ts';
import { countParameters, decodeModel, encodeModel, graphOf, type OnnxModel } from './onnx/model.ts';
import { isExternal } from './onnx/tensor.ts';
import { inject as injectModel, type InjectOptions } from './adapter/inject.ts';
import { merge as mergeModel, isZeroDelta, mergeState, requireAdapter } from './adapter/merge.ts';
import { parseAdapterSummary, summarizeAdapter, type AdapterSummary } from './adapter/adapter-meta.ts';
import { checkSameBase } from './adapter/fingerprint.ts';
import { stateFromTensors, type TweakerState } from './adapter/state.ts';
import { inspectModel, type InspectOptions, type InspectReport } from './adapter/inspect.ts';
import { webRuntime, WEB_EP_CHOICES, type WebEp } from './runtime/web-backend.ts';
import { exampleSetFromJsonl, exampleSetFromRows, type ExampleSet } from './data/example-set.ts';
import { tokenizerFromJson, type TextTokenizer } from './data/tokenize.ts';
import { batchInputs } from './data/batch-inputs.ts';
import { IGNORE_INDEX } from './data/tasks.ts';
import { halfBitsToFloat } from './onnx/dtype.ts';
import { checkpointBytes, decodeCheckpoint, type TrainState } from './train/checkpoint.ts';
import { runTraining, type TrainEvent } from './train/loop.ts';
import { averageStates } from './train/average.ts';
import { buildTrainingPlan, checkTask, headList, planToRun } from './train/plan.ts';
import { checkResumable, resolveRun, type RunSettings } from './train/run-config.ts';
import type { EvalMetrics } from './train/evaluate.ts';
import { adapterFromModel, adapterFromTensors, peftFiles, summaryOfModel, type AdapterSource } from './interop/peft/adapter.ts';
import type { PeftConfigOptions } from './interop/peft/config.ts';

export { PeanutError, type PeanutErrorCode } from './errors.ts';
export { VERSION } from './version.ts';
export { webRuntime, WEB_EP_CHOICES, type WebEp };
export type { TrainEvent, InjectOptions, InspectReport, EvalMetrics, SafeTensor, AdapterSummary };

/** Parameter values by PEFT key (`<module>.peanut_A.weight`, …). */
export type Params = Record<string, SafeTensor>;

/** A model given as bytes, decoded; models that keep weights in external files are refused (a page has no files). */
function modelFromBytes(bytes: Uint8Array, what: string): OnnxModel {
  if (!(bytes instanceof Uint8Array)) throw new PeanutError('E_BAD_CONFIG', `${what} must be the .onnx file's bytes (a Uint8Array), got ${bytes === null ? 'null' : typeof bytes}`);
  const proto = decodeModel(bytes, what);
  const external = graphOf({ proto, baseDir: '' }).initializer.filter(isExternal);
  if (external.length) {
    throw new PeanutError('E_BAD_CONFIG', `${what} keeps ${external.length} tensor(s) in external data files (e.g. '${external[0]!.name}'), which a browser cannot read; save the model with its weights inside the .onnx file`);
  }
  return { proto, baseDir: '' };
}

/** `inspect`: the model's candidate layers, the default targets and the trainable-parameter budget. */
export function inspect(model: Uint8Array, options: InspectOptions = {}): InspectReport {
  return inspectModel(modelFromBytes(model, 'the model'), options);
}

export interface WebInjectResult {
  /** The adapted model (.onnx bytes; the CLI's `inject` writes the same model). */
  model: Uint8Array;
  /** Adapted module paths, in graph order. */
  targets: string[];
  /** The adapter record (method, rank, modules, base-weight fingerprints). */
  adapter: AdapterSummary;
  trainableParams: number;
  baseParams: number;
}

/** `inject`: adds tweakers to the target layers; the options are the Node library's (`r`, `targets`, `method`, `seed`, …). */
export function inject(model: Uint8Array, options: Omit<InjectOptions, 'init' | 'initName'> & { init?: Params } = {}): WebInjectResult {
  const base = modelFromBytes(model, 'the model');
  const { init, ...rest } = options;
  const r = injectModel(base, { ...rest, ...(init ? { init: new Map(Object.entries(init)), initName: 'options.init' } : {}) });
  const trainableParams = [...r.state.values()].reduce((s, v) => s + v.length, 0);
  return { model: encodeModel(r.model.proto), targets: r.targets.map((t) => t.module), adapter: summarizeAdapter(r.meta), trainableParams, baseParams: countParameters(base) };
}

/** Training data: JSONL text (one example a line, as the CLI reads), or the examples themselves. */
export type DataInput = string | readonly unknown[];

function exampleSet(data: DataInput, what: string, tokenizer?: TextTokenizer): ExampleSet {
  const opts = tokenizer ? { tokenizer } : {};
  if (typeof data === 'string') return exampleSetFromJsonl(data, what, opts);
  if (Array.isArray(data)) return exampleSetFromRows(data, what, opts);
  throw new PeanutError('E_DATA', `${what} must be JSONL text or an array of examples`);
}

function tokenizerOf(t: WebTrainOptions['tokenizer']): TextTokenizer | undefined {
  if (t === undefined) return undefined;
  let json: unknown = t;
  if (typeof t === 'string') {
    try {
      json = JSON.parse(t);
    } catch (err) {
      throw new PeanutError('E_DATA', `options.tokenizer is not valid JSON (${(err as Error).message}); pass the contents of tokenizer.json`);
    }
  }
  if (!json || typeof json !== 'object') throw new PeanutError('E_DATA', 'options.tokenizer must be the contents of tokenizer.json (text or parsed)');
  return tokenizerFromJson(json as Record<string, unknown>, {}, 'tokenizer.json');
}

export interface WebTrainOptions extends RunSettings {
  /** The onnxruntime module to run on (onnxruntime-web's `ort.wasm` or `ort.webgpu` build). */
  ort: unknown;
  /** The adapted model (.onnx bytes from `inject` or the CLI's `inject`). */
  model: Uint8Array;
  task: string;
  /** The graph output(s) holding the predictions; default the task's (`logits`). */
  head?: string | readonly string[];
  data: DataInput;
  eval?: DataInput;
  /** `wasm` (default) or `webgpu`. */
  ep?: WebEp;
  /** tokenizer.json (text or parsed), for examples that carry `text`. */
  tokenizer?: string | object;
  /** Truncate sequences to this many tokens. */
  maxLength?: number;
  /** Continue from this checkpoint (bytes of a page's or the CLI's checkpoint). */
  resume?: Uint8Array;
  /** With `resume`: continue even when settings differ from the checkpoint's (`changed` lists them). */
  force?: boolean;
  /** Evaluate every N steps (0 = at the start and the end only). */
  evalEvery?: number;
  /** Hand a checkpoint to `onCheckpoint` every N steps (0 = at the end only). */
  saveEvery?: number;
  onCheckpoint?: (checkpoint: Uint8Array, step: number) => void | Promise<void>;
  /** Stop at the next step boundary; the result then holds the state reached (`interrupted`). */
  signal?: AbortSignal;
  onEvent?: (e: TrainEvent) => void;
  /** Extra onnxruntime session options for the training session, passed through as they are (e.g. `{ logSeverityLevel: 0 }`). */
  sessionOptions?: Readonly<Record<string, unknown>>;
}

export interface WebTrainResult {
  /** Trained θ by PEFT key. */
  params: Params;
  /** The final state in the CLI's checkpoint format (θ, AdamW moments, step, data cursor, hyper-parameters). */
  checkpoint: Uint8Array;
  evals: Array<{ step: number } & EvalMetrics>;
  /** Every step's metrics line, as the CLI's metrics.jsonl holds them. */
  metrics: Array<Record<string, unknown>>;
  step: number;
  totalSteps: number;
  lastLoss: number | undefined;
  interrupted: boolean;
  /** The execution provider used. */
  ep: string;
  /** On a resume with `force`: the settings that changed. */
  changed: string[];
}

/**
 * Hands the event loop back for one task: a message to itself, which unlike `setTimeout(0)` is not
 * clamped to 4 ms, so a step costs microseconds more while the page stays responsive.
 */
function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((done) => setTimeout(done, 0));
  return new Promise((done) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      done();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * `train`: builds the training graph here (shapes probed through `ort`), then runs the CLI's loop:
 * the same data order, schedule and AdamW for the same seed and hyper-parameters, so θ follows
 * the CLI's run up to the rounding differences of the kernels.
 *
 * @throws PeanutError for bad options, data that does not fit the model, a resume over other base
 *   weights (E_BASE_MISMATCH) or changed settings without `force` (E_BAD_CONFIG), a non-finite loss
 */
export async function train(options: WebTrainOptions): Promise<WebTrainResult> {
  const runtime = webRuntime(options.ort);
  if (options.ep !== undefined && !WEB_EP_CHOICES.includes(options.ep)) throw new PeanutError('E_BAD_CONFIG', `ep '${options.ep}' is not one of ${WEB_EP_CHOICES.join(', ')}`);
  const task = checkTask(options.task);
  const adapted = modelFromBytes(options.model, 'the adapted model');
  const tokenizer = tokenizerOf(options.tokenizer);
  const data = exampleSet(options.data, 'the training data', tokenizer);
  const evalData = options.eval !== undefined ? exampleSet(options.eval, 'the eval data', tokenizer) : undefined;
  const resumed = options.resume ? decodeCheckpoint(options.resume, 'the resumed checkpoint') : undefined;
  const head = headList(options.head);

  const plan = await buildTrainingPlan(runtime, adapted, { task, ...(head ? { heads: head } : {}) });
  const graphs = planToRun(plan);
  const { manifest } = graphs;
  const check = { inputs: manifest.train.inputs.data, labels: manifest.labels, task: manifest.task, bounds: manifest.bounds, ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}) };
  data.check(check);
  evalData?.check({ ...check, inputs: manifest.eval.inputs.data });

  let state: TrainState = graphs.init;
  if (resumed) {
    checkResumable(manifest, resumed, 'the resumed checkpoint', 'the adapted model');
    state = resumed;
  }
  const run = resolveRun(manifest.hyperparameters, options, data.size, resumed, options.force);

  const metrics: Array<Record<string, unknown>> = [];
  let last: TrainState | undefined;
  const r = await runTraining(runtime, graphs, {
    data,
    ...(evalData ? { eval: evalData } : {}),
    state,
    hyper: run.hyper,
    stepsPerEpoch: run.stepsPerEpoch,
    ep: options.ep ?? 'wasm',
    ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}),
    ...(options.sessionOptions ? { sessionExtra: options.sessionOptions } : {}),
    saveEvery: options.saveEvery ?? 0,
    evalEvery: options.evalEvery ?? 0,
    afterStep: yieldToEventLoop,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(resumed ? { resumedFrom: 'the resumed checkpoint' } : {}),
    save: async (s) => {
      last = s;
      if (options.onCheckpoint) await options.onCheckpoint(checkpointBytes(s), s.step);
      return `checkpoint at step ${s.step}`;
    },
    log: (line) => {
      if ('loss' in line) metrics.push(line);
    },
  });
  const final = last ?? r.state;
  return {
    params: Object.fromEntries(final.params),
    checkpoint: checkpointBytes(final),
    evals: r.evals,
    metrics,
    step: r.step,
    totalSteps: r.totalSteps,
    lastLoss: r.lastLoss,
    interrupted: r.interrupted,
    ep: r.ep,
    changed: run.changed,
  };
}

/** θ for `meta` from a checkpoint's bytes or a params record, checked against the model's base weights. */
function paramsFor(adapted: OnnxModel, from: { params?: Params; checkpoint?: Uint8Array }): TweakerState | undefined {
  const meta = requireAdapter(adapted);
  const specs = meta.targets.flatMap((t) => t.params);
  if (from.checkpoint) {
    const state = decodeCheckpoint(from.checkpoint, 'the checkpoint');
    checkSameBase(meta, parseAdapterSummary(state.peanut, 'the checkpoint'), 'the checkpoint', 'the adapted model');
    return stateFromTensors(state.params, specs, { what: 'the checkpoint', allowExtra: true });
  }
  if (from.params) return stateFromTensors(new Map(Object.entries(from.params)), specs, { what: 'options.params', allowExtra: true });
  return undefined;
}

export interface WebMergeOptions {
  /** The adapted model (.onnx bytes). */
  model: Uint8Array;
  /** Trained θ (from `train`), or… */
  params?: Params;
  /** …a checkpoint (a page's or the CLI's); neither = the θ inside the adapted model. */
  checkpoint?: Uint8Array;
  /** Compute ΔW in float64 and refuse non-finite results. */
  safe?: boolean;
}

/** `merge`: W = W0 + ΔW into every target; the original graph comes back (the bytes `peanut-onnx merge` writes). */
export function merge(options: WebMergeOptions): Uint8Array {
  const adapted = modelFromBytes(options.model, 'the adapted model');
  const params = paramsFor(adapted, options);
  return encodeModel(mergeModel(adapted, { ...(params ? { params } : {}), safe: options.safe ?? false }).proto);
}

/** Whether θ (given, or the model's own) leave every weight as it was (an untrained adapter). */
export function isUntrained(options: Omit<WebMergeOptions, 'safe'>): boolean {
  const adapted = modelFromBytes(options.model, 'the adapted model');
  const meta = requireAdapter(adapted);
  const params = paramsFor(adapted, options);
  return isZeroDelta(meta, mergeState(adapted, meta, params ? { params } : {}));
}

export interface WebPeftAdapter {
  /** adapter_config.json's text. */
  config: string;
  /** adapter_model.safetensors' bytes. */
  weights: Uint8Array;
  keys: string[];
  warnings: string[];
}

/**
 * `export-peft`: a Hugging Face PEFT adapter (the two files' contents) from a checkpoint, or from
 * the adapted model's own θ. A checkpoint records its adapter; `model` is needed only without one.
 */
export function exportPeft(options: { model?: Uint8Array; checkpoint?: Uint8Array } & Omit<PeftConfigOptions, 'fanInFanOut'>): WebPeftAdapter {
  const { model, checkpoint, ...config } = options;
  let source: AdapterSource;
  if (checkpoint) {
    source = adapterFromTensors(parseSafetensors(checkpoint, 'the checkpoint'), 'the checkpoint', model ? summaryOfModel(modelFromBytes(model, 'the adapted model')) : undefined);
  } else if (model) {
    source = adapterFromModel(modelFromBytes(model, 'the adapted model'), 'the adapted model');
  } else {
    throw new PeanutError('E_BAD_CONFIG', 'exportPeft needs a checkpoint or an adapted model');
  }
  const files = peftFiles(source, config);
  const weights = new Uint8Array(files.weights.reduce((s, c) => s + c.byteLength, 0));
  let at = 0;
  for (const c of files.weights) {
    weights.set(c, at);
    at += c.byteLength;
  }
  return { config: `${JSON.stringify(files.config, null, 2)}\n`, weights, keys: files.keys, warnings: files.warnings };
}

/**
 * The weighted average of several checkpoints of the same adapted model (θ and moments; the rest
 * the first's), e.g. the clients of a federated round: the bytes `peanut-onnx average` writes.
 *
 * @param weights - one weight >= 0 per checkpoint (e.g. examples seen); default equal
 */
export function average(checkpoints: readonly Uint8Array[], weights?: readonly number[]): Uint8Array {
  const names = checkpoints.map((_, i) => `checkpoint ${i + 1}`);
  return checkpointBytes(averageStates(checkpoints.map((c, i) => decodeCheckpoint(c, names[i]!)), names, weights));
}

/** Reads a checkpoint's bytes: step, data cursor, hyper-parameters, θ and moments. */
export function readCheckpoint(bytes: Uint8Array): TrainState {
  return decodeCheckpoint(bytes, 'the checkpoint');
}
export type { TrainState };

export interface WebEvaluateOptions {
  ort: unknown;
  /** Any model with the task's head: the original, an adapted one (θ inside) or a merged one. */
  model: Uint8Array;
  /** A classification task: `seq-cls`, `image-cls` or `token-cls`. */
  task: string;
  data: DataInput;
  /** The output holding the logits (default `logits`, else the model's first output). */
  head?: string;
  batchSize?: number;
  ep?: WebEp;
  tokenizer?: string | object;
}

/** Tasks whose labels are classes, so a model's own logits give an accuracy. */
const ACCURACY_TASKS: readonly string[] = ['seq-cls', 'image-cls', 'token-cls'];

/** Accuracy of a model's own outputs (argmax of the logits = label) over every example, in order. */
export async function evaluate(options: WebEvaluateOptions): Promise<{ accuracy: number; examples: number }> {
  const runtime = webRuntime(options.ort);
  const task = checkTask(options.task);
  if (!ACCURACY_TASKS.includes(task)) {
    throw new PeanutError('E_BAD_CONFIG', `evaluate measures classification accuracy (seq-cls, image-cls, token-cls), not '${task}'`);
  }
  const model = modelFromBytes(options.model, 'the model');
  const set = exampleSet(options.data, 'the eval data', tokenizerOf(options.tokenizer));
  const { inputs, labels } = batchInputs(model, { task });
  const modelInputs = new Set(graphOf(model).input.map((i) => i.name));
  const session = await runtime.createSession(options.model, { ep: options.ep ?? 'wasm' });
  const head = options.head ?? (session.outputNames.includes('logits') ? 'logits' : session.outputNames[0]!);
  if (!session.outputNames.includes(head)) throw new PeanutError('E_BAD_CONFIG', `the model has no output '${head}'; its outputs are ${session.outputNames.join(', ')}`);
  const batchSize = options.batchSize ?? 64;
  let correct = 0;
  let counted = 0;
  try {
    for (let start = 0; start < set.size; start += batchSize) {
      const indices = Array.from({ length: Math.min(batchSize, set.size - start) }, (_, i) => start + i);
      const batch = set.batch(indices, { inputs, labels, task });
      const feeds = Object.fromEntries([...batch].filter(([k]) => modelInputs.has(k)));
      const out = (await session.run(feeds, [head]))[head]!;
      const logits = out.type === 'float16' ? Float32Array.from(out.data as Uint16Array, halfBitsToFloat) : (out.data as Float32Array);
      const y = batch.get(labels[0]!.name)!.data;
      const C = Number(out.dims.at(-1) ?? 1);
      for (let i = 0; i < y.length; i++) {
        const v = Number(y[i]);
        if (v === IGNORE_INDEX) continue;
        let best = 0;
        for (let c = 1; c < C; c++) if (logits[i * C + c]! > logits[i * C + best]!) best = c;
        counted++;
        if (best === v) correct++;
      }
    }
  } finally {
    await session.release();
  }
  return { accuracy: counted ? correct / counted : NaN, examples: set.size };
}
