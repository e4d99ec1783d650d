/**
 * Hugging Face PEFT `adapter_config.json`: the PEANuT (and LoRA) configs as PEFT saves them, and
 * their validated reading back into this project's `MethodConfig`.
 *
 * A saved PEANuT config holds exactly these fields (PEFT `PeanutConfig` as written by
 * `save_pretrained`): act_fn, auto_mapping, base_model_name_or_path, depth, exclude_modules,
 * inference_mode, init_weights, layers_pattern, layers_to_transform, modules_to_save, peft_type,
 * peft_version, r, revision, scaling, target_modules, task_type.
 */
import { PeanutError } from '../../errors.ts';
import { ACTIVATIONS, ACTIVATION_ALIASES, LIMITS, resolveActivation, type Activation, type LoraConfig, type MethodConfig, type PeanutConfig } from '../../adapter/config.ts';
import { parseTargets } from '../../adapter/targets.ts';
import { compileSafeRegex } from '../../util/safe-regex.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** The prefix PEFT's `save_pretrained` puts before module paths (PeftModel → base_model → model). */
export { PEFT_KEY_PREFIX } from '../../adapter/state.ts';
/**
 * The PEFT version recorded in exported configs. PEFT only records it (and warns when a config
 * comes from a newer PEFT than the one loading it); the PEANuT tuner ships from this release on.
 */
export const PEFT_VERSION = '0.19.0';

/** The fields of a saved PEANuT `adapter_config.json`, in PEFT's (sorted) order. */
export const PEANUT_CONFIG_FIELDS = [
  'act_fn',
  'auto_mapping',
  'base_model_name_or_path',
  'depth',
  'exclude_modules',
  'inference_mode',
  'init_weights',
  'layers_pattern',
  'layers_to_transform',
  'modules_to_save',
  'peft_type',
  'peft_version',
  'r',
  'revision',
  'scaling',
  'target_modules',
  'task_type',
] as const;

/** PEFT `TaskType` values for this project's tasks. */
export const PEFT_TASK_TYPES: Readonly<Record<string, string>> = {
  'seq-cls': 'SEQ_CLS',
  regression: 'SEQ_CLS',
  'causal-lm': 'CAUSAL_LM',
};

/** Our activation names as Hugging Face `ACT2FN` keys (`gelu_tanh` is not one). */
const ACT_TO_HF: Readonly<Record<Activation, string>> = {
  relu: 'relu',
  gelu: 'gelu',
  gelu_tanh: 'gelu_pytorch_tanh',
  silu: 'silu',
  tanh: 'tanh',
  sigmoid: 'sigmoid',
};

export type PeftTargetModules = string | string[];

export interface PeftConfigOptions {
  /** `base_model_name_or_path` (default null). */
  baseModel?: string | null;
  /** PEFT `task_type` (default null). */
  taskType?: string | null;
  /**
   * LoRA only: the targets are GPT-2 style Conv1D layers (weight stored `[in, out]` in torch),
   * for which PEFT needs `fan_in_fan_out: true`. The ONNX math is the same either way.
   */
  fanInFanOut?: boolean;
}

/** `target_modules` as PEFT stores it: a list of names, or a regex / `all-linear` string. */
export function peftTargetModules(targetModules: string): PeftTargetModules {
  const spec = parseTargets(targetModules);
  if (spec.kind === 'names') return [...spec.names].sort();
  return spec.kind === 'regex' ? spec.source : 'all-linear';
}

/** The `adapter_config.json` object for a method configuration. */
export function peftConfigFor(config: MethodConfig, targetModules: string, opts: PeftConfigOptions = {}): Record<string, unknown> {
  const common = {
    auto_mapping: null,
    base_model_name_or_path: opts.baseModel ?? null,
    exclude_modules: null,
    inference_mode: true,
    layers_pattern: null,
    layers_to_transform: null,
    modules_to_save: null,
    peft_version: PEFT_VERSION,
    revision: null,
    target_modules: peftTargetModules(targetModules),
    task_type: opts.taskType ?? null,
  };
  if (config.method === 'peanut') {
    const out: Record<string, unknown> = {
      ...common,
      act_fn: ACT_TO_HF[config.act],
      depth: config.depth,
      init_weights: true,
      peft_type: 'PEANUT',
      r: config.r,
      scaling: config.scaling,
    };
    return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
  }
  const out: Record<string, unknown> = {
    ...common,
    alpha_pattern: {},
    bias: 'none',
    fan_in_fan_out: opts.fanInFanOut ?? false,
    init_lora_weights: true,
    layer_replication: null,
    loftq_config: {},
    lora_alpha: config.alpha,
    lora_bias: false,
    lora_dropout: 0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    peft_type: 'LORA',
    r: config.r,
    rank_pattern: {},
    use_dora: false,
    use_rslora: false,
  };
  return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
}

/** A validated adapter config: our method config and PEFT's target_modules. */
export interface ParsedPeftConfig {
  config: MethodConfig;
  targetModules: PeftTargetModules | null;
  /** Module paths excluded (PEFT `exclude_modules`), if any. */
  excludeModules: PeftTargetModules | null;
  raw: Record<string, unknown>;
}

function bad(what: string, message: string): PeanutError {
  return new PeanutError('E_BAD_CONFIG', `${what}: ${message}`);
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
}

function positiveInt(what: string, field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(what, `'${field}' must be a positive integer, got ${JSON.stringify(v)}`);
  if (v > max) throw bad(what, `'${field}' is ${v}; at most ${max} is supported`);
  return v;
}

function finite(what: string, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(what, `'${field}' must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function targetsField(what: string, field: string, v: unknown): PeftTargetModules | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    // A string is a regex (PEFT fully matches it): it must compile to a linear-time matcher.
    if (v !== 'all-linear') {
      try {
        compileSafeRegex(v);
      } catch (err) {
        throw bad(what, `'${field}' ${JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v)} is not a supported regular expression: ${(err as Error).message}`);
      }
    }
    return v;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw bad(what, `'${field}' must be a string or a list of strings, got ${JSON.stringify(v)}`);
}

/**
 * Validates an `adapter_config.json` object.
 *
 * @param raw - the parsed JSON
 * @param what - how to name the file in messages
 * @throws PeanutError `E_BAD_CONFIG` for an unsupported peft_type, act_fn or option
 */
export function parsePeftConfig(raw: unknown, what = ADAPTER_CONFIG_FILE): ParsedPeftConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(what, 'not a JSON object');
  const o = raw as Record<string, unknown>;
  const type = o.peft_type;
  const targetModules = targetsField(what, 'target_modules', o.target_modules);
  const excludeModules = targetsField(what, 'exclude_modules', o.exclude_modules);
  if (!isEmpty(o.modules_to_save)) {
    throw bad(what, `'modules_to_save' (${JSON.stringify(o.modules_to_save)}) is not supported: fully trained modules cannot be imported into an ONNX export; only tweaker layers can`);
  }
  if (type === 'PEANUT') {
    const actName = o.act_fn ?? 'relu';
    if (typeof actName !== 'string') throw bad(what, `'act_fn' must be a string, got ${JSON.stringify(actName)}`);
    let act: Activation;
    try {
      act = resolveActivation(actName);
    } catch {
      throw bad(what, `act_fn '${actName}' is not supported; supported: ${[...ACTIVATIONS.filter((a) => a !== 'gelu_tanh'), ...Object.keys(ACTIVATION_ALIASES)].join(', ')}`);
    }
    const depth = o.depth ?? 0;
    if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 0) throw bad(what, `'depth' must be an integer >= 0, got ${JSON.stringify(depth)}`);
    if (depth > LIMITS.depth) throw bad(what, `'depth' is ${depth}; at most ${LIMITS.depth} is supported`);
    const config: PeanutConfig = { method: 'peanut', r: positiveInt(what, 'r', o.r ?? 32, LIMITS.rank), depth, act, scaling: finite(what, 'scaling', o.scaling ?? 1) };
    return { config, targetModules, excludeModules, raw: o };
  }
  if (type === 'LORA') {
    const unsupported: string[] = [];
    if (o.use_dora === true) unsupported.push('use_dora');
    if (o.use_rslora === true) unsupported.push('use_rslora');
    if (o.bias !== undefined && o.bias !== 'none') unsupported.push(`bias '${String(o.bias)}'`);
    if (o.lora_bias === true) unsupported.push('lora_bias');
    if (!isEmpty(o.rank_pattern)) unsupported.push('rank_pattern');
    if (!isEmpty(o.alpha_pattern)) unsupported.push('alpha_pattern');
    if (unsupported.length) throw bad(what, `LoRA options not supported: ${unsupported.join(', ')} (plain LoRA with one r and lora_alpha only)`);
    const config: LoraConfig = { method: 'lora', r: positiveInt(what, 'r', o.r ?? 8, LIMITS.rank), alpha: finite(what, 'lora_alpha', o.lora_alpha ?? 8) };
    return { config, targetModules, excludeModules, raw: o };
  }
  throw bad(what, `peft_type ${JSON.stringify(type ?? null)} is not supported; supported: PEANUT, LORA`);
}
