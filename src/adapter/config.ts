/**
 * Adapter method configuration: the validated form of `--method`, `--rank`, `--depth`, `--act`,
 * `--scaling` and `--alpha`. Library callers and the CLI share `resolveMethodConfig`, so a bad
 * value gets the same one-line error (code `E_BAD_CONFIG`) either way.
 */
import { PeanutError } from '../errors.ts';

/** Activations the tweaker can emit (standard ONNX ops only). */
export const ACTIVATIONS = ['relu', 'gelu', 'gelu_tanh', 'silu', 'tanh', 'sigmoid'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** Hugging Face `ACT2FN` names accepted as spellings of the activations above. */
export const ACTIVATION_ALIASES: Readonly<Record<string, Activation>> = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  swish: 'silu',
};

export const METHODS = ['peanut', 'lora'] as const;
export type MethodName = (typeof METHODS)[number];

export interface PeanutConfig {
  method: 'peanut';
  /** Rank r of the tweaker. */
  r: number;
  /** Number of encoder/decoder pairs (PEFT `depth`). */
  depth: number;
  act: Activation;
  scaling: number;
}

export interface LoraConfig {
  method: 'lora';
  r: number;
  /** PEFT `lora_alpha`; ΔW is scaled by alpha / r. */
  alpha: number;
}

export type MethodConfig = PeanutConfig | LoraConfig;

/** Defaults of PEFT's `PeanutConfig` (r 32) and `LoraConfig` (r 8, lora_alpha 8), and of the seed. */
export const DEFAULTS = {
  peanut: { r: 32, depth: 0, act: 'relu' as Activation, scaling: 1 },
  lora: { r: 8, alpha: 8 },
  seed: 0,
} as const;

/**
 * Bounds on the sizes a configuration may ask for, so a typo (`--rank 1e9`) or a hostile
 * `adapter_config.json` (`depth: 1000000`) is refused at once instead of allocating without end.
 * Far above any published setting (PEFT's LoRA ranks go to a few thousand; PEANuT's papers use
 * depth ≤ 4); inject also refuses an adapter larger than the model it adapts.
 */
export const LIMITS = { rank: 16_384, depth: 64 } as const;

/** Loose input: numbers may come as strings from the command line. */
export interface MethodOptions {
  method?: string;
  r?: number | string;
  depth?: number | string;
  act?: string;
  scaling?: number | string;
  alpha?: number | string;
}

function bad(message: string): PeanutError {
  return new PeanutError('E_BAD_CONFIG', message);
}

function toInt(name: string, v: number | string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'number' ? v : v.trim() === '' ? NaN : Number(v);
  if (!Number.isInteger(n) || n < min) throw bad(`${name} must be an integer >= ${min}, got '${v}'`);
  if (n > max) throw bad(`${name} must be at most ${max}, got '${v}'`);
  return n;
}

function toFinite(name: string, v: number | string): number {
  const n = typeof v === 'number' ? v : v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n)) throw bad(`${name} must be a finite number, got '${v}'`);
  return n;
}

/** Canonical activation name for `name` (aliases resolved), or a PeanutError listing the valid ones. */
export function resolveActivation(name: string): Activation {
  const key = name.trim().toLowerCase();
  if ((ACTIVATIONS as readonly string[]).includes(key)) return key as Activation;
  const alias = ACTIVATION_ALIASES[key];
  if (alias) return alias;
  throw bad(`unknown activation '${name}'; valid: ${[...ACTIVATIONS, ...Object.keys(ACTIVATION_ALIASES)].join(', ')}`);
}

/**
 * Validates and completes a method configuration.
 *
 * @param opts - loose options (CLI strings or numbers); missing fields take PEFT's defaults.
 * @throws PeanutError `E_BAD_CONFIG` naming the bad value.
 */
export function resolveMethodConfig(opts: MethodOptions = {}): MethodConfig {
  const method = (opts.method ?? 'peanut').toLowerCase();
  if (!(METHODS as readonly string[]).includes(method)) throw bad(`unknown method '${opts.method}'; valid: ${METHODS.join(', ')}`);
  if (method === 'lora') {
    const d = DEFAULTS.lora;
    return { method: 'lora', r: toInt('rank', opts.r ?? d.r, 1, LIMITS.rank), alpha: toFinite('alpha', opts.alpha ?? d.alpha) };
  }
  const d = DEFAULTS.peanut;
  return {
    method: 'peanut',
    r: toInt('rank', opts.r ?? d.r, 1, LIMITS.rank),
    depth: toInt('depth', opts.depth ?? d.depth, 0, LIMITS.depth),
    act: resolveActivation(opts.act ?? d.act),
    scaling: toFinite('scaling', opts.scaling ?? d.scaling),
  };
}

/** Validates a seed: an integer in [0, 2^32). */
export function resolveSeed(seed: number | string | undefined): number {
  if (seed === undefined) return DEFAULTS.seed;
  const n = toInt('seed', seed, 0);
  if (n > 0xffffffff) throw bad(`seed must be below 2^32, got '${seed}'`);
  return n;
}
