/**
 * PEFT's default `target_modules` per architecture (TRANSFORMERS_MODELS_TO_PEANUT_TARGET_MODULES_MAPPING,
 * a copy of the LoRA map), and detection of the architecture of an export, which carries no
 * `model_type`. Detection says what it rests on:
 *
 * - **module names**: a family is recognised when each of its default target names matches at
 *   least one module path derived from node/weight names; the root scope (`roberta.encoder…`)
 *   or distinctive module names (`encoder_attn.q_proj`: an encoder-decoder) name the model type
 *   when they can.
 * - **graph structure**: when names carry no module paths, the recognised blocks' layout
 *   (structure.ts) identifies BERT (separate q/k/v, or q/k/v fused by ONNX Runtime, norm after
 *   each residual Add, learned positions), GPT-2 (packed q/k/v, norm before each block, learned
 *   positions), LLaMA (separate q/k/v, gated MLP, rotary) and BART/Whisper-style
 *   encoder-decoders (cross-attention, scaled scores); words in the export's names (`bert`,
 *   `roberta`, …) then name the model type within the family.
 *
 * Nothing else is guessed: a layout that matches none of these is reported as not recognised.
 */
import { PeanutError } from '../errors.ts';
import type { StructureSummary } from './structure.ts';

/** A model type told apart within a family by module names only it has. */
export interface ArchitectureVariant {
  modelType: string;
  /** Any of these module-name suffixes marks it. */
  signature: readonly string[];
  /** What the signature shows, for messages. */
  means: string;
}

export interface Architecture {
  /** Family name shown to users. */
  name: string;
  /** Hugging Face `model_type`s of the family (the first one names it when the root scope does not). */
  models: readonly string[];
  /** PEFT default target_modules. */
  targets: readonly string[];
  /** Model types recognised by distinctive module names, tried in order. */
  variants?: readonly ArchitectureVariant[];
}

export const ARCHITECTURES: readonly Architecture[] = [
  { name: 'bert', models: ['bert', 'roberta', 'xlm-roberta', 'electra', 'camembert', 'vit', 'deit', 'layoutlm'], targets: ['query', 'value'] },
  {
    name: 'llama',
    models: ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'phi', 'opt', 'gptj', 'mixtral', 'bart', 'mbart', 'marian', 'whisper'],
    targets: ['q_proj', 'v_proj'],
    variants: [
      { modelType: 'encoder-decoder', signature: ['encoder_attn.q_proj', 'encoder_attn.k_proj', 'encoder_attn.v_proj'], means: 'cross-attention layers (bart, mbart, marian, whisper style)' },
      { modelType: 'llama', signature: ['o_proj', 'gate_proj', 'up_proj', 'down_proj'], means: 'llama-style layers (llama, mistral, qwen2, gemma, …)' },
      { modelType: 'opt', signature: ['self_attn.out_proj', 'fc1'], means: 'out_proj/fc1/fc2 layers (opt, or a bart/whisper encoder)' },
    ],
  },
  { name: 'gpt2', models: ['gpt2', 'gpt_bigcode'], targets: ['c_attn'] },
  { name: 'gpt_neox', models: ['gpt_neox', 'bloom', 'falcon'], targets: ['query_key_value'] },
  { name: 't5', models: ['t5', 'mt5'], targets: ['q', 'v'] },
  { name: 'distilbert', models: ['distilbert'], targets: ['q_lin', 'v_lin'] },
  { name: 'deberta-v2', models: ['deberta-v2', 'deberta'], targets: ['query_proj', 'value_proj'] },
  { name: 'mpt', models: ['mpt'], targets: ['Wqkv'] },
];

const family = (name: string) => ARCHITECTURES.find((a) => a.name === name)!;

export interface DetectedArchitecture {
  architecture: Architecture;
  /** The model type when the export names it (root scope, names) or a variant marks it, else the family name. */
  modelType: string;
  /** Whether `modelType` is named by the export (or a variant) rather than being the family name. */
  named: boolean;
  /** What the detection rests on. */
  source: 'module-names' | 'graph-structure';
  /** In words, for messages (`inspect`, `inject`). */
  evidence: string;
}

/** PEFT's rule: the path is the name or ends with `.name`. */
const endsWithName = (module: string, name: string) => module === name || module.endsWith(`.${name}`);

/**
 * The first architecture whose default targets all match some module path, if any.
 *
 * @param modules - module paths derived from node/weight names
 */
export function detectArchitecture(modules: readonly string[]): DetectedArchitecture | undefined {
  for (const architecture of ARCHITECTURES) {
    const hits = architecture.targets.map((t) => modules.find((m) => endsWithName(m, t)));
    if (hits.some((h) => h === undefined)) continue;
    const shown = hits.map((h) => `'${h}'`).join(', ');
    const roots = new Set(modules.map((m) => m.split('.')[0]!.replace(/_/g, '-')));
    const named = architecture.models.find((m) => roots.has(m) || roots.has(m.replace(/_/g, '-')));
    if (named) {
      return { architecture, modelType: named, named: true, source: 'module-names', evidence: `module names from the export's node/weight names (${shown}); the root scope names the model type '${named}'` };
    }
    for (const v of architecture.variants ?? []) {
      const mark = modules.find((m) => v.signature.some((s) => endsWithName(m, s)));
      if (mark) {
        return { architecture, modelType: v.modelType, named: true, source: 'module-names', evidence: `module names from the export's node/weight names (${shown}); '${mark}' marks ${v.means}` };
      }
    }
    return {
      architecture,
      modelType: architecture.name,
      named: false,
      source: 'module-names',
      evidence: `module names from the export's node/weight names (${shown}); the export does not name the model type (${architecture.models.join(', ')} share these names)`,
    };
  }
  return undefined;
}

/** The model type (of `models`) most often named in the export's own names, with an example name. */
function modelTypeFromNames(models: readonly string[], names: readonly string[]): { modelType: string; example: string; count: number } | undefined {
  let best: { modelType: string; example: string; count: number } | undefined;
  for (const m of models) {
    const re = new RegExp(`(?:^|[^a-z0-9])${m.replace(/[-_]/g, '[-_]?')}(?:$|[^a-z0-9])`);
    let count = 0;
    let example = '';
    for (const n of names) {
      if (re.test(n.toLowerCase())) {
        count++;
        example ||= n;
      }
    }
    if (count > (best?.count ?? 0)) best = { modelType: m, example, count };
  }
  return best;
}

/**
 * A names-based detection whose model type the names leave open, told apart by the structure:
 * q_proj/v_proj layers with cross-attention are an encoder-decoder's, with a gated MLP and rotary
 * embeddings LLaMA's.
 */
export function refineWithStructure(d: DetectedArchitecture, s: StructureSummary): DetectedArchitecture {
  if (d.named || d.architecture.name !== 'llama') return d;
  if (s.crossAttention > 0) return { ...d, modelType: 'encoder-decoder', named: true, evidence: `${d.evidence}; the graph structure has cross-attention (an encoder-decoder)` };
  if (s.gatedMlp > 0 && s.plainMlp === 0 && s.rotary) return { ...d, modelType: 'llama', named: true, evidence: `${d.evidence}; the graph structure has gated MLPs and rotary embeddings (llama style)` };
  return d;
}

/** One line describing a structure summary (for evidence and for "not recognised" messages). */
export function describeStructure(s: StructureSummary): string {
  const parts: string[] = [`${s.layers} layer(s)`];
  if (s.attention) {
    const form = s.packedQkv === s.attention ? 'packed q/k/v' : s.separateQkv === s.attention ? 'separate query/key/value projections' : 'mixed q/k/v projections';
    parts.push(`${s.attention} self-attention block(s) with ${form}${s.fusedOps.length ? ` (${s.fusedOps.join(', ')})` : ''}`);
  }
  if (s.crossAttention) parts.push(`${s.crossAttention} cross-attention block(s)`);
  if (s.mlp) parts.push(`${s.mlp} MLP(s)${s.gatedMlp ? (s.plainMlp ? ', some gated' : ', gated') : ''}`);
  if (s.postNorm || s.preNorm) parts.push(s.postNorm > s.preNorm ? 'normalisation after each residual Add' : 'normalisation before each block');
  if (s.rotary) parts.push('rotary position embeddings');
  if (s.learnedPositions) parts.push('learned position embeddings');
  return parts.join(', ');
}

/**
 * The architecture the recognised blocks' layout identifies, if any.
 *
 * @param names - every node and initializer name of the export, where the model type may be named
 */
export function detectFromStructure(s: StructureSummary, names: readonly string[]): DetectedArchitecture | undefined {
  const attn = s.attention;
  const allSeparate = attn > 0 && s.separateQkv === attn && s.packedQkv === 0;
  const allPacked = attn > 0 && s.packedQkv === attn;
  const plain = s.plainMlp > 0 && s.gatedMlp === 0;
  let name: string | undefined;
  let layout = '';
  // ONNX Runtime fuses BERT's query/key/value into one Attention weight; the norms stay after the residual Adds.
  const fusedPacked = allPacked && s.fusedOps.includes('Attention (com.microsoft)');
  if (s.crossAttention === 0 && (allSeparate || fusedPacked) && plain && !s.rotary && s.postNorm > s.preNorm && s.learnedPositions) {
    name = 'bert';
    layout = fusedPacked ? "BERT's layout, q/k/v fused by ONNX Runtime" : "BERT's layout";
  } else if (s.crossAttention === 0 && allPacked && plain && !s.rotary && s.preNorm >= s.postNorm && s.learnedPositions) {
    name = 'gpt2';
    layout = "GPT-2's layout";
  } else if (s.crossAttention === 0 && allSeparate && s.gatedMlp > 0 && s.plainMlp === 0 && s.rotary && s.preNorm > s.postNorm) {
    name = 'llama';
    layout = "LLaMA's layout";
  } else if (s.crossAttention > 0 && allSeparate && plain && !s.rotary && s.unscaled === 0) {
    name = 'llama';
    layout = 'a BART/Whisper-style encoder-decoder layout';
  }
  if (!name) return undefined;
  const architecture = family(name);
  // The export's names may name a model of another family with the same layout (DistilBERT
  // and BERT): then the structure alone cannot say whose module names to use.
  const elsewhere = modelTypeFromNames(
    ARCHITECTURES.filter((a) => a !== architecture).flatMap((a) => a.models),
    names,
  );
  const encoderDecoder = s.crossAttention > 0;
  const hint = encoderDecoder ? undefined : modelTypeFromNames(architecture.models, names);
  if (elsewhere && elsewhere.count > (hint?.count ?? 0)) return undefined;
  const evidence = `graph structure: ${describeStructure(s)} (${layout})${hint ? `; the export's names name the model type '${hint.modelType}' (e.g. '${hint.example}')` : ''}`;
  return {
    architecture,
    modelType: encoderDecoder ? 'encoder-decoder' : (hint?.modelType ?? architecture.name),
    named: encoderDecoder || !!hint,
    source: 'graph-structure',
    evidence,
  };
}

/**
 * PEFT's default targets for a model's candidates.
 *
 * @param discovery - what discovery detected (its architecture, possibly none, and structure);
 *   without it, detection from the candidates' module paths
 * @throws PeanutError `E_NO_TARGETS` when the architecture is unknown, listing the candidates.
 */
export function defaultTargets(
  candidates: ReadonlyArray<{ module: string }>,
  discovery?: { architecture?: DetectedArchitecture; structure?: StructureSummary },
): { targets: readonly string[]; detected: DetectedArchitecture } {
  // Discovery detected from names before naming layers by structure: its verdict stands (the
  // neutral structural names must not be read as an architecture's module names).
  const found = discovery ? discovery.architecture : detectArchitecture(candidates.map((c) => c.module));
  if (!found) {
    const structure = discovery?.structure;
    const list = candidateList(candidates, '(none)');
    const seen = structure && structure.layers > 0 ? ` (graph structure: ${describeStructure(structure)}; no known architecture has this layout)` : '';
    const hint = structure && structure.attention + structure.crossAttention > 0 ? `, e.g. --targets query,value for the attention query and value projections` : '';
    throw new PeanutError('E_NO_TARGETS', `cannot tell the model's architecture${seen}, so there are no default targets; pass --targets (names, a regex or all-linear${hint}). Candidate modules: ${list}`);
  }
  return { targets: found.architecture.targets, detected: found };
}

/** Candidate module paths for an error message: the first dozen and how many there are in all. */
export function candidateList(candidates: readonly { module: string }[], none: string): string {
  if (candidates.length === 0) return none;
  const shown = candidates.slice(0, 12).map((c) => c.module).join(', ');
  return candidates.length > 12 ? `${shown}, … (${candidates.length} in all; \`peanut-onnx inspect\` lists them)` : shown;
}
