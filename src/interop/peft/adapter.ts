/**
 * Hugging Face PEFT adapters in and out, on contents (files are src/node/peft-files.ts).
 *
 *   export: adapted model | tweaker/checkpoint tensors ──▶ adapter_config.json + adapter_model.safetensors
 *   import: a PEFT PEANuT or LoRA adapter + model ──▶ adapted model (inject with those values)
 *
 * Tensors keep PEFT's names (`base_model.model.<module>.peanut_A.weight`, …) and shapes, float32.
 * Module paths are this project's (derived from the export's node scopes), which are the torch
 * module paths PEFT uses for an optimum export. Import maps each adapter module onto a discovered
 * layer and injects through `inject` with the adapter's values as the initial state, so the adapted
 * model is exactly what `inject --init` would write.
 */
import { PeanutError, type PeanutErrorCode } from '../../errors.ts';
import { checkSameBase } from '../../adapter/fingerprint.ts';
import { compileSafeRegex } from '../../util/safe-regex.ts';
import type { OnnxModel } from '../../onnx/model.ts';
import { ADAPTER_META_KEY, parseAdapterSummary, readAdapterMeta, summarizeAdapter, type AdapterParam, type AdapterSummary } from '../../adapter/adapter-meta.ts';
import type { MethodConfig } from '../../adapter/config.ts';
import { inject, type InjectResult } from '../../adapter/inject.ts';
import { methodFor } from '../../adapter/methods/index.ts';
import { PEFT_KEY_PREFIX, stateFromModel, stateFromTensors, type TweakerState } from '../../adapter/state.ts';
import { discoverTargets, type Candidate } from '../../adapter/targets.ts';
import { encodeSafetensors, parseSafetensors, type SafeFile, type SafeTensor } from '../../formats/safetensors.ts';
import { parseMomentName } from '../../formats/checkpoint-keys.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, PEFT_TASK_TYPES, parsePeftConfig, peftConfigFor, type ParsedPeftConfig, type PeftConfigOptions, type PeftTargetModules } from './config.ts';

/** An adapter in this project's terms: method config, targets, and per-module parameter values. */
export interface AdapterSource {
  config: MethodConfig;
  /**
   * Modules that look like GPT-2 `Conv1D` layers in torch: a MatMul (or Gemm without transB)
   * whose weight keeps the module's own name (`<module>.weight`, stored `[in, out]`), where an
   * exported `nn.Linear` weight would be an anonymous transposed constant.
   */
  conv1d: string[];
  /** The targets value used at injection (`query,value`, a regex, `all-linear`). */
  targetModules: string;
  /** Modules in order, each with its parameters (PEFT keys without prefix, PEFT shapes). */
  params: AdapterParam[];
  state: TweakerState;
  /** The training task, when the source records it (checkpoints). */
  task?: string;
  /** What was read, for messages. */
  from: string;
}

function listShort(items: readonly string[], max = 10): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, … (${items.length} in all)`;
}

function conv1dModules(summary: AdapterSummary): string[] {
  return Object.entries(summary.modules)
    .filter(([module, m]) => m.weight === `${module}.weight` && (m.layout === 'io' || (m.layout === undefined && m.op === 'MatMul')))
    .map(([module]) => module);
}

function paramsFor(summary: AdapterSummary): AdapterParam[] {
  const method = methodFor(summary.config);
  return Object.entries(summary.modules).flatMap(([module, layer]) =>
    method.paramSpecs(summary.config, { in: layer.in, out: layer.out }).map((s) => ({ name: `${module}.${s.suffix}`, shape: s.shape })),
  );
}

/** The adapter summary of an adapted model. @throws PeanutError E_NOT_ADAPTED for a plain model. */
export function summaryOfModel(model: OnnxModel): AdapterSummary {
  const meta = readAdapterMeta(model);
  if (!meta || meta.targets.length === 0) {
    throw new PeanutError('E_NOT_ADAPTED', `${model.path ?? 'the model'} has no tweakers (no '${ADAPTER_META_KEY}' metadata); pass a model written by 'peanut-onnx inject'`);
  }
  return summarizeAdapter(meta);
}

/** The adapter an adapted model holds (its θ initializers). */
export function adapterFromModel(model: OnnxModel, from: string): AdapterSource {
  const summary = summaryOfModel(model);
  const meta = readAdapterMeta(model)!;
  return { config: summary.config, targetModules: summary.targetModules, conv1d: conv1dModules(summary), params: meta.targets.flatMap((t) => t.params), state: stateFromModel(model, meta), from };
}

/**
 * The adapter a tweaker file or training checkpoint holds. Its configuration comes from its own
 * metadata, or from `summary` (the adapted model's) when given.
 */
export function adapterFromTensors(file: SafeFile, from: string, summary?: AdapterSummary): AdapterSource {
  const { tensors, metadata } = file;
  const recorded = parseAdapterSummary(metadata.peanut ?? metadata[ADAPTER_META_KEY], from);
  // Parameters trained on other base weights than the model given for them are refused.
  if (summary && recorded) checkSameBase(summary, recorded, from, 'the model given with --model');
  const found = summary ?? recorded;
  if (!found) {
    throw new PeanutError(
      'E_BAD_CONFIG',
      `${from} does not record the adapter configuration (no 'peanut' or '${ADAPTER_META_KEY}' metadata); pass the adapted model it belongs to with --model <adapted.onnx>`,
    );
  }
  const params = paramsFor(found);
  // Checkpoints also carry AdamW moments: not adapter parameters.
  const own = new Map([...tensors].filter(([k]) => !parseMomentName(k)));
  const state = stateFromTensors(own, params, { what: from });
  return { config: found.config, targetModules: found.targetModules, conv1d: conv1dModules(found), params, state, ...(metadata.task ? { task: metadata.task } : {}), from };
}

export interface ExportPeftOptions extends PeftConfigOptions {
  /**
   * The adapted model, for a checkpoint or tweaker file that does not record the adapter
   * configuration (r, depth, act, scaling, targets, layer shapes).
   */
  model?: string;
}

/** A PEFT adapter as its two files' contents. */
export interface PeftFiles {
  /** adapter_config.json */
  config: Record<string, unknown>;
  /** adapter_model.safetensors, as chunks to write in order */
  weights: Uint8Array[];
  /** Keys written, with PEFT's prefix. */
  keys: string[];
  /** Things a PEFT user should know (e.g. PEANuT on Conv1D layers, which PEFT does not adapt). */
  warnings: string[];
}

/** The adapter's tensors under PEFT's keys (`base_model.model.<module>.<param>`), F32. */
export function peftTensors(source: Pick<AdapterSource, 'params' | 'state'>): Map<string, SafeTensor> {
  const out = new Map<string, SafeTensor>();
  for (const p of source.params) {
    const data = source.state.get(p.name);
    if (!data) throw new PeanutError('E_BAD_SAFETENSORS', `adapter has no values for '${p.name}'`);
    out.set(`${PEFT_KEY_PREFIX}${p.name}`, { dtype: 'F32', shape: [...p.shape], data });
  }
  return out;
}

/** The PEFT adapter files of an adapter: `adapter_config.json` and `adapter_model.safetensors`. */
export function peftFiles(source: AdapterSource, opts: Omit<PeftConfigOptions, 'fanInFanOut'> = {}): PeftFiles {
  const taskType = opts.taskType !== undefined ? opts.taskType : source.task ? (PEFT_TASK_TYPES[source.task] ?? null) : null;
  const config = peftConfigFor(source.config, source.targetModules, { baseModel: opts.baseModel ?? null, taskType, fanInFanOut: source.conv1d.length > 0 });
  const tensors = peftTensors(source);
  const warnings: string[] = [];
  if (source.config.method === 'peanut' && source.conv1d.length) {
    warnings.push(`${source.conv1d.length} target(s) look like GPT-2 Conv1D layers (${listShort(source.conv1d, 4)}); PEFT's PEANuT adapts torch.nn.Linear only, so PeftModel.from_pretrained will refuse them`);
  }
  return { config, weights: encodeSafetensors(tensors, { format: 'pt' }), keys: [...tensors.keys()], warnings };
}

/** A PEFT adapter, read and validated (not yet matched to a model). */
export interface PeftAdapter {
  /** Where it came from (the adapter directory), for messages. */
  dir: string;
  parsed: ParsedPeftConfig;
  /** Tensors by key as stored (usually with `base_model.model.`). */
  tensors: Map<string, SafeTensor>;
}

/** A PEFT adapter from its two files' contents; `dir` names it in messages. */
export function parsePeftAdapter(configJson: string, weights: Uint8Array, dir: string): PeftAdapter {
  const configPath = `${dir}/${ADAPTER_CONFIG_FILE}`;
  let raw: unknown;
  try {
    raw = JSON.parse(configJson);
  } catch (err) {
    throw new PeanutError('E_BAD_CONFIG', `${configPath} is not valid JSON (${(err as Error).message})`);
  }
  const parsed = parsePeftConfig(raw, configPath);
  const { tensors } = parseSafetensors(weights, `${dir}/${ADAPTER_WEIGHTS_FILE}`);
  return { dir, parsed, tensors };
}

/** A PEFT parameter key split into module path and parameter suffix, for a method. */
function splitKey(key: string, config: MethodConfig): { module: string; suffix: string } | undefined {
  const k = key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key;
  const re = config.method === 'peanut' ? /^(.+)\.(peanut_A\.weight|peanut_B\.weight|peanut_encoders\.\d+\.weight|peanut_decoders\.\d+\.weight)$/ : /^(.+)\.(lora_A\.weight|lora_B\.weight)$/;
  const m = re.exec(k);
  return m ? { module: m[1]!, suffix: m[2]! } : undefined;
}

/** PEFT's rule for `target_modules`: a string is fully matched as a regex (or `all-linear`); a list matches names or `.name` suffixes. */
function peftSelects(c: Candidate, targets: PeftTargetModules): boolean {
  if (typeof targets === 'string') {
    if (targets === 'all-linear') return !c.isHead;
    try {
      return compileSafeRegex(targets).test(c.module);
    } catch {
      return false;
    }
  }
  return targets.some((n) => c.module === n || c.module.endsWith(`.${n}`));
}

export interface ImportPeftOptions {
  /** How to name the adapter in messages. */
  what?: string;
}

export interface ImportPeftResult extends InjectResult {
  /** Modules the adapter file holds but its target_modules does not select (adapted all the same). */
  outsideTargets: string[];
}

/**
 * Adapts `model` with a PEFT adapter's values: every adapter module must be a layer of the
 * model, with the shapes the adapter config implies, before anything is injected.
 *
 * @throws PeanutError listing every key that names no layer, has an unexpected parameter, or
 *   disagrees in shape (`E_NO_TARGETS` / `E_SHAPE_MISMATCH` / `E_BAD_SAFETENSORS`)
 */
export function importPeft(model: OnnxModel, adapter: PeftAdapter, opts: ImportPeftOptions = {}): ImportPeftResult {
  const what = opts.what ?? `${adapter.dir}/${ADAPTER_WEIGHTS_FILE}`;
  const { config } = adapter.parsed;
  const method = methodFor(config);
  const discovery = discoverTargets(model);
  const byModule = new Map(discovery.candidates.map((c) => [c.module, c]));

  const notKeys: string[] = [];
  const fileModules = new Map<string, Map<string, SafeTensor>>();
  for (const [key, t] of adapter.tensors) {
    const s = splitKey(key, config);
    if (!s) {
      notKeys.push(key);
      continue;
    }
    let m = fileModules.get(s.module);
    if (!m) fileModules.set(s.module, (m = new Map()));
    m.set(s.suffix, t);
  }

  const unknown: string[] = [];
  const unexpected: string[] = [];
  const missing: string[] = [];
  const badShape: string[] = [];
  for (const [module, params] of fileModules) {
    const c = byModule.get(module);
    if (!c) {
      unknown.push(module);
      continue;
    }
    const specs = method.paramSpecs(config, { in: c.in, out: c.out });
    const wanted = new Map(specs.map((s) => [s.suffix, s.shape]));
    for (const [suffix, t] of params) {
      const shape = wanted.get(suffix);
      if (!shape) unexpected.push(`${PEFT_KEY_PREFIX}${module}.${suffix}`);
      else if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
        badShape.push(`${module}.${suffix} is [${t.shape.join(', ')}], the layer [${c.in} -> ${c.out}] with r=${config.r} needs [${shape.join(', ')}]`);
      }
    }
    for (const s of specs) if (!params.has(s.suffix)) missing.push(`${PEFT_KEY_PREFIX}${module}.${s.suffix}`);
  }

  const problems: string[] = [];
  if (unknown.length) {
    const known = discovery.candidates.map((c) => c.module);
    problems.push(`${unknown.length} module(s) match no layer of the model: ${listShort(unknown)} (its layers: ${listShort(known, 6) || 'none'})`);
  }
  if (notKeys.length) problems.push(`${notKeys.length} key(s) are not ${config.method === 'peanut' ? 'PEANuT' : 'LoRA'} parameters: ${listShort(notKeys)}`);
  if (badShape.length) problems.push(`shape mismatch: ${listShort(badShape, 6)}`);
  if (unexpected.length) problems.push(`unexpected parameter(s) for depth ${config.method === 'peanut' ? config.depth : '-'}: ${listShort(unexpected)}`);
  if (missing.length) problems.push(`missing parameter(s): ${listShort(missing)}`);
  if (fileModules.size === 0 && !problems.length) problems.push('it holds no adapter parameters');
  if (problems.length) {
    const code: PeanutErrorCode = unknown.length ? 'E_NO_TARGETS' : badShape.length ? 'E_SHAPE_MISMATCH' : 'E_BAD_SAFETENSORS';
    throw new PeanutError(code, `${what} does not fit the model: ${problems.join('; ')}`);
  }

  // The layers to adapt: exactly the adapter's modules. Keep the config's target_modules as the
  // recorded targets when it selects the same set (PEFT's matching rules), else list the modules.
  const ordered = discovery.candidates.filter((c) => fileModules.has(c.module));
  const targetsCfg = adapter.parsed.targetModules;
  const selected = targetsCfg === null ? [] : discovery.candidates.filter((c) => peftSelects(c, targetsCfg));
  const same = selected.length === ordered.length && selected.every((c) => fileModules.has(c.module));
  const asOurs = typeof targetsCfg === 'string' && targetsCfg !== 'all-linear' && !/[*+?()[\]|^$\\]/.test(targetsCfg) ? undefined : targetsCfg;
  const targets: string | string[] = same && asOurs ? asOurs : ordered.map((c) => c.module);
  const outsideTargets = targetsCfg === null ? [] : ordered.filter((c) => !peftSelects(c, targetsCfg)).map((c) => c.module);

  const init = new Map<string, SafeTensor>();
  for (const [module, params] of fileModules) for (const [suffix, t] of params) init.set(`${module}.${suffix}`, t);
  const methodOptions = config.method === 'peanut' ? { method: 'peanut', r: config.r, depth: config.depth, act: config.act, scaling: config.scaling } : { method: 'lora', r: config.r, alpha: config.alpha };
  const result = inject(model, { ...methodOptions, targets, init, initName: what });
  return { ...result, outsideTargets };
}
