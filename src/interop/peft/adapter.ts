/**
 * Hugging Face PEFT adapters in and out.
 *
 *   export: adapted.onnx | tweaker/checkpoint .safetensors | run dir | artifact dir
 *           ──▶ <dir>/adapter_config.json + <dir>/adapter_model.safetensors   (PeftModel.from_pretrained)
 *   import: <dir> (a PEFT PEANuT or LoRA adapter) + model.onnx ──▶ adapted model (inject with those values)
 *
 * Tensors keep PEFT's names (`base_model.model.<module>.peanut_A.weight`, …) and shapes, float32.
 * Module paths are this project's (derived from the export's node scopes), which are the torch
 * module paths PEFT uses for an optimum export. Import maps each adapter module onto a discovered
 * layer and injects through `inject` with the adapter's values as the initial state, so the adapted
 * model is exactly what `inject --init` would write.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PeanutError, type PeanutErrorCode } from '../../errors.ts';
import { loadModel } from '../../node/model-files.ts';
import { type OnnxModel } from '../../onnx/model.ts';
import { readAdapterMeta, ADAPTER_META_KEY, type AdapterParam } from '../../adapter/adapter-meta.ts';
import { resolveMethodConfig, type MethodConfig } from '../../adapter/config.ts';
import { inject, type InjectResult } from '../../adapter/inject.ts';
import { methodFor } from '../../adapter/methods/index.ts';
import { stateFromModel, stateFromTensors, type TweakerState } from '../../adapter/state.ts';
import { discoverTargets, type Candidate } from '../../adapter/targets.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../../formats/safetensors.ts';
import { writeFileAtomic } from '../../node/atomic.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  PEFT_KEY_PREFIX,
  PEFT_TASK_TYPES,
  parsePeftConfig,
  peftConfigFor,
  type ParsedPeftConfig,
  type PeftConfigOptions,
  type PeftTargetModules,
} from './config.ts';

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

interface ModuleSummary {
  in: number;
  out: number;
  op?: string;
  weight?: string;
  /** `io` = stored [in, out]; `oi` = stored [out, in]. */
  layout?: string;
}

interface ConfigSummary {
  config: MethodConfig;
  targetModules: string;
  modules: Record<string, ModuleSummary>;
}

function listShort(items: readonly string[], max = 10): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, … (${items.length} in all)`;
}

function conv1dModules(summary: ConfigSummary): string[] {
  return Object.entries(summary.modules)
    .filter(([module, m]) => m.weight === `${module}.weight` && (m.layout === 'io' || (m.layout === undefined && m.op === 'MatMul')))
    .map(([module]) => module);
}

function paramsFor(summary: ConfigSummary): AdapterParam[] {
  const method = methodFor(summary.config);
  return Object.entries(summary.modules).flatMap(([module, layer]) =>
    method.paramSpecs(summary.config, { in: layer.in, out: layer.out }).map((s) => ({ name: `${module}.${s.suffix}`, shape: s.shape })),
  );
}

function parseSummary(json: string | undefined, what: string): ConfigSummary | undefined {
  if (json === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new PeanutError('E_BAD_SAFETENSORS', `${what}: its adapter metadata is not valid JSON`);
  }
  const o = v as Partial<ConfigSummary> | null;
  if (!o || typeof o !== 'object' || !o.config || !o.modules || typeof o.modules !== 'object') return undefined;
  const modules = Object.values(o.modules);
  if (modules.some((m) => !m || typeof m.in !== 'number' || typeof m.out !== 'number')) return undefined;
  return { config: resolveMethodConfig(o.config as unknown as Record<string, string | number>), targetModules: o.targetModules ?? Object.keys(o.modules).join(','), modules: o.modules };
}

function summaryOfModel(model: OnnxModel): ConfigSummary {
  const meta = readAdapterMeta(model);
  if (!meta || meta.targets.length === 0) {
    throw new PeanutError('E_NOT_ADAPTED', `${model.path ?? 'the model'} has no tweakers (no '${ADAPTER_META_KEY}' metadata); pass a model written by 'peanut-onnx inject'`);
  }
  return { config: meta.config, targetModules: meta.targetModules, modules: Object.fromEntries(meta.targets.map((t) => [t.module, { in: t.in, out: t.out, op: t.op, weight: t.weight, layout: t.layout }])) };
}

/**
 * The safetensors file behind a path: itself, a run directory's latest
 * `checkpoints/step-<N>.safetensors`, or an artifact directory's `checkpoint.safetensors`.
 */
function checkpointFile(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const ckdir = join(path, 'checkpoints');
  if (existsSync(ckdir)) {
    const steps = readdirSync(ckdir)
      .map((f) => /^step-(\d+)\.safetensors$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[1]) - Number(a[1]));
    if (steps.length) return join(ckdir, steps[0]![0]);
  }
  const artifact = join(path, 'checkpoint.safetensors');
  if (existsSync(artifact)) return artifact;
  throw new PeanutError('E_FILE_NOT_FOUND', `${path} holds no checkpoint: expected checkpoints/step-<N>.safetensors (a run directory) or checkpoint.safetensors (an artifact directory)`);
}

export interface ReadAdapterOptions {
  /**
   * The adapted model, for a checkpoint or tweaker file that does not record the adapter
   * configuration (r, depth, act, scaling, targets, layer shapes).
   */
  model?: string;
}

/**
 * Reads an adapter from an adapted model, a tweaker or training checkpoint file, a run
 * directory or an artifact directory.
 *
 * @throws PeanutError `E_FILE_NOT_FOUND`, `E_NOT_ADAPTED`, `E_BAD_SAFETENSORS`, `E_BAD_CONFIG`
 */
export function readAdapterSource(path: string, opts: ReadAdapterOptions = {}): AdapterSource {
  if (!existsSync(path)) throw new PeanutError('E_FILE_NOT_FOUND', `not found: ${path} (pass an adapted .onnx, a checkpoint .safetensors or a run directory)`);
  const isDir = statSync(path).isDirectory();
  if (!isDir && !path.endsWith('.safetensors')) {
    const model = loadModel(path);
    const summary = summaryOfModel(model);
    const meta = readAdapterMeta(model)!;
    return { config: summary.config, targetModules: summary.targetModules, conv1d: conv1dModules(summary), params: meta.targets.flatMap((t) => t.params), state: stateFromModel(model, meta), from: path };
  }
  const file = checkpointFile(path);
  const { tensors, metadata } = readSafetensors(file);
  let summary = parseSummary(metadata.peanut ?? metadata[ADAPTER_META_KEY], file);
  if (opts.model) summary = summaryOfModel(loadModel(opts.model));
  if (!summary) {
    throw new PeanutError(
      'E_BAD_CONFIG',
      `${file} does not record the adapter configuration (no 'peanut' or '${ADAPTER_META_KEY}' metadata); pass the adapted model it belongs to with --model <adapted.onnx>`,
    );
  }
  const params = paramsFor(summary);
  // Checkpoints also carry AdamW moments (adam.m.*, adam.v.*): not adapter parameters.
  const own = new Map([...tensors].filter(([k]) => !k.startsWith('adam.')));
  const state = stateFromTensors(own, params, { what: file });
  return { config: summary.config, targetModules: summary.targetModules, conv1d: conv1dModules(summary), params, state, ...(metadata.task ? { task: metadata.task } : {}), from: file };
}

export interface ExportPeftOptions extends ReadAdapterOptions, PeftConfigOptions {}

export interface ExportPeftResult {
  /** Things a PEFT user should know (e.g. PEANuT on Conv1D layers, which PEFT does not adapt). */
  warnings: string[];
  configPath: string;
  weightsPath: string;
  config: Record<string, unknown>;
  /** Keys written, with PEFT's prefix. */
  keys: string[];
  source: AdapterSource;
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

/**
 * Writes a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`), each file
 * atomically; the directory is created if needed.
 *
 * @param sourcePath - adapted model, checkpoint/tweaker file, run or artifact directory
 * @param outDir - the adapter directory
 */
export function exportPeft(sourcePath: string, outDir: string, opts: ExportPeftOptions = {}): ExportPeftResult {
  const source = readAdapterSource(sourcePath, opts);
  const taskType = opts.taskType !== undefined ? opts.taskType : source.task ? (PEFT_TASK_TYPES[source.task] ?? null) : null;
  const config = peftConfigFor(source.config, source.targetModules, { baseModel: opts.baseModel ?? null, taskType, fanInFanOut: source.conv1d.length > 0 });
  const tensors = peftTensors(source);
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new PeanutError('E_OUTPUT_EXISTS', `-o ${outDir} is a file; a PEFT adapter is a directory`);
  mkdirSync(outDir, { recursive: true });
  const weightsPath = join(outDir, ADAPTER_WEIGHTS_FILE);
  const configPath = join(outDir, ADAPTER_CONFIG_FILE);
  writeSafetensors(weightsPath, tensors, { format: 'pt' });
  writeFileAtomic(configPath, new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`));
  const warnings: string[] = [];
  if (source.config.method === 'peanut' && source.conv1d.length) {
    warnings.push(`${source.conv1d.length} target(s) look like GPT-2 Conv1D layers (${listShort(source.conv1d, 4)}); PEFT's PEANuT adapts torch.nn.Linear only, so PeftModel.from_pretrained will refuse them`);
  }
  return { warnings, configPath, weightsPath, config, keys: [...tensors.keys()], source };
}

/** A PEFT adapter directory, read and validated (not yet matched to a model). */
export interface PeftAdapter {
  dir: string;
  parsed: ParsedPeftConfig;
  /** Tensors by key as stored (usually with `base_model.model.`). */
  tensors: Map<string, SafeTensor>;
}

/**
 * Reads `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors`.
 *
 * @throws PeanutError `E_FILE_NOT_FOUND` naming the missing files, `E_BAD_CONFIG` for an
 *   unsupported configuration, `E_BAD_SAFETENSORS` for an unreadable weights file
 */
export function readPeftAdapter(dir: string): PeftAdapter {
  if (!existsSync(dir)) throw new PeanutError('E_FILE_NOT_FOUND', `adapter directory not found: ${dir}`);
  if (!statSync(dir).isDirectory()) throw new PeanutError('E_FILE_NOT_FOUND', `${dir} is not a directory; pass the PEFT adapter directory holding ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}`);
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const missing = [configPath, weightsPath].filter((p) => !existsSync(p));
  if (missing.length) {
    const pickle = existsSync(join(dir, 'adapter_model.bin')) ? ' (adapter_model.bin is a pickle file; re-save the adapter with safe_serialization=True)' : '';
    throw new PeanutError('E_FILE_NOT_FOUND', `PEFT adapter incomplete: missing ${missing.join(', ')}${pickle}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new PeanutError('E_BAD_CONFIG', `${configPath} is not valid JSON (${(err as Error).message})`);
  }
  const parsed = parsePeftConfig(raw, configPath);
  const { tensors } = readSafetensors(weightsPath);
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
      return new RegExp(`^(?:${targets})$`).test(c.module);
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
  const what = opts.what ?? join(adapter.dir, ADAPTER_WEIGHTS_FILE);
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
