/**
 * PEFT's default `target_modules` per architecture (TRANSFORMERS_MODELS_TO_PEANUT_TARGET_MODULES_MAPPING,
 * a copy of the LoRA map), and detection of the architecture from an export's module paths.
 * An ONNX export carries no `model_type`, so a family is recognised when each of its default
 * target names matches at least one candidate layer; the root scope names the model when known.
 */
import { PeanutError } from '../errors.ts';
import { moduleMatches, type Candidate } from './targets.ts';

export interface Architecture {
  /** Family name shown to users. */
  name: string;
  /** Hugging Face `model_type`s of the family (the first one names it when the root scope does not). */
  models: readonly string[];
  /** PEFT default target_modules. */
  targets: readonly string[];
}

export const ARCHITECTURES: readonly Architecture[] = [
  { name: 'bert', models: ['bert', 'roberta', 'xlm-roberta', 'electra', 'camembert', 'vit', 'deit', 'layoutlm'], targets: ['query', 'value'] },
  { name: 'llama', models: ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'phi', 'opt', 'gptj', 'mixtral'], targets: ['q_proj', 'v_proj'] },
  { name: 'gpt2', models: ['gpt2', 'gpt_bigcode'], targets: ['c_attn'] },
  { name: 'gpt_neox', models: ['gpt_neox', 'bloom', 'falcon'], targets: ['query_key_value'] },
  { name: 't5', models: ['t5', 'mt5'], targets: ['q', 'v'] },
  { name: 'distilbert', models: ['distilbert'], targets: ['q_lin', 'v_lin'] },
  { name: 'deberta-v2', models: ['deberta-v2', 'deberta'], targets: ['query_proj', 'value_proj'] },
  { name: 'mpt', models: ['mpt'], targets: ['Wqkv'] },
];

export interface DetectedArchitecture {
  architecture: Architecture;
  /** The model type when the root scope names one (e.g. `roberta`), else the family name. */
  modelType: string;
}

/** The first architecture whose default targets all match some module path, if any. */
export function detectArchitecture(modules: readonly string[]): DetectedArchitecture | undefined {
  for (const architecture of ARCHITECTURES) {
    const hits = architecture.targets.every((t) => modules.some((m) => moduleMatches(m, { kind: 'names', names: [t] })));
    if (!hits) continue;
    const roots = new Set(modules.map((m) => m.split('.')[0]!.replace(/_/g, '-')));
    const named = architecture.models.find((m) => roots.has(m) || roots.has(m.replace(/_/g, '-')));
    return { architecture, modelType: named ?? architecture.name };
  }
  return undefined;
}

/**
 * PEFT's default targets for a model's candidates.
 *
 * @throws PeanutError `E_NO_TARGETS` when the architecture is unknown, listing the candidates.
 */
export function defaultTargets(candidates: readonly Candidate[]): { targets: readonly string[]; detected: DetectedArchitecture } {
  const detected = detectArchitecture(candidates.map((c) => c.module));
  if (!detected) {
    const list = candidates.map((c) => c.module).join(', ') || '(none)';
    throw new PeanutError('E_NO_TARGETS', `cannot tell the model's architecture, so there are no default targets; pass --targets (names, a regex or all-linear). Candidate modules: ${list}`);
  }
  return { targets: detected.architecture.targets, detected };
}
