/**
 * Module names for layers found by the graph structure (structure.ts): the names PEFT would give
 * them in the detected architecture's Hugging Face model, or a neutral form when the
 * architecture is not known.
 *
 * | architecture       | attention (q, k, v / packed, output)                          | MLP                                   |
 * |--------------------|---------------------------------------------------------------|---------------------------------------|
 * | bert               | `bert.encoder.layer.N.attention.self.{query,key,value}`, `….attention.output.dense` | `….intermediate.dense`, `….output.dense` |
 * | gpt2               | `transformer.h.N.attn.c_attn`, `….attn.c_proj`                | `….mlp.c_fc`, `….mlp.c_proj`          |
 * | llama              | `model.layers.N.self_attn.{q,k,v,o}_proj`                     | `….mlp.{gate,up,down}_proj`           |
 * | encoder-decoder    | `model.{encoder,decoder}.layers.N.{self_attn,encoder_attn}.{q,k,v,out}_proj` | `….fc1`, `….fc2`      |
 * | neutral            | `layer.N.attention.{query,key,value,qkv,output}`, `layer.N.cross_attention.…` | `layer.N.mlp.{fc1,fc2,gate,up,down}` |
 *
 * The root (`bert`, `roberta`, `transformer.`, `model.`) follows the module paths the export's
 * names do carry, else the detected model type; GPT-2 and LLaMA use the paths of their LM-head
 * models (`GPT2LMHeadModel`, `LlamaForCausalLM`). BERT's query, key and value are separate
 * modules, so a fused q/k/v weight (ONNX Runtime's Attention) is named as three column ranges
 * (discovery makes them three layers). A role a convention has no module for gets the neutral name. In the neutral form `--targets query,value` selects
 * the attention query and value projections, as PEFT's default does in every family it maps.
 */
import type { Role, StructuralRole } from './structure.ts';

export interface NamingConvention {
  /** `bert`, `gpt2`, `llama`, `encoder-decoder` or `neutral`. */
  id: string;
  name(r: StructuralRole): string;
  /** The architecture's query, key and value are separate modules: a packed q/k/v weight is named (and adapted) as three parts. */
  separatesPackedQkv?: boolean;
}

type Names = Partial<Record<Role, string>>;

/** The neutral name: `layer.3.attention.query`, `decoder.layer.0.cross_attention.output`, `layer.3.mlp.fc1`. */
export function neutralName(r: StructuralRole): string {
  return `${r.stack ? `${r.stack}.` : ''}layer.${r.index}.${r.block}.${r.role}`;
}

function convention(id: string, name: (r: StructuralRole) => string | undefined, separatesPackedQkv = false): NamingConvention {
  return { id, name: (r) => name(r) ?? neutralName(r), ...(separatesPackedQkv ? { separatesPackedQkv } : {}) };
}

const BERT_ROOTS: Readonly<Record<string, string>> = { roberta: 'roberta', 'xlm-roberta': 'roberta', camembert: 'roberta', electra: 'electra', layoutlm: 'layoutlm' };

/** The first capture of `re` over the module paths, if any. */
const rootIn = (modules: readonly string[], re: RegExp) => modules.map((m) => re.exec(m)?.[1]).find((x) => x !== undefined);

/**
 * The naming convention for an export.
 *
 * @param detected - the detected architecture's family and model type (none: neutral names)
 * @param modules - module paths the export's names carry (they fix the root where present)
 */
export function namingConvention(detected: { architecture: { name: string }; modelType: string } | undefined, modules: readonly string[]): NamingConvention {
  const family = detected?.architecture.name;
  if (family === 'bert') {
    const root = rootIn(modules, /^([A-Za-z0-9_-]+)\.encoder\.layer\.\d+\./) ?? rootIn(modules, /^([A-Za-z0-9_-]+)\.(?:pooler|embeddings)\./) ?? BERT_ROOTS[detected!.modelType] ?? 'bert';
    const attn: Names = { query: 'attention.self.query', key: 'attention.self.key', value: 'attention.self.value', output: 'attention.output.dense' };
    const cross: Names = { query: 'crossattention.self.query', key: 'crossattention.self.key', value: 'crossattention.self.value', output: 'crossattention.output.dense' };
    const mlp: Names = { fc1: 'intermediate.dense', fc2: 'output.dense' };
    return convention(
      'bert',
      (r) => {
        const leaf = (r.block === 'attention' ? attn : r.block === 'cross_attention' ? cross : mlp)[r.role];
        return leaf && !r.stack ? `${root}.encoder.layer.${r.index}.${leaf}` : undefined;
      },
      true,
    );
  }
  if (family === 'gpt2') {
    const root = rootIn(modules, /^((?:[A-Za-z0-9_-]+\.)*)h\.\d+\.(?:attn|mlp)\./) ?? 'transformer.';
    const attn: Names = { qkv: 'attn.c_attn', output: 'attn.c_proj' };
    const cross: Names = { query: 'crossattention.q_attn', kv: 'crossattention.c_attn', output: 'crossattention.c_proj' };
    const mlp: Names = { fc1: 'mlp.c_fc', fc2: 'mlp.c_proj' };
    return convention('gpt2', (r) => {
      const leaf = (r.block === 'attention' ? attn : r.block === 'cross_attention' ? cross : mlp)[r.role];
      return leaf && !r.stack ? `${root}h.${r.index}.${leaf}` : undefined;
    });
  }
  if (family === 'llama' && detected!.modelType === 'encoder-decoder') {
    const attn: Names = { query: 'q_proj', key: 'k_proj', value: 'v_proj', output: 'out_proj' };
    const mlp: Names = { fc1: 'fc1', fc2: 'fc2' };
    return convention('encoder-decoder', (r) => {
      if (!r.stack) return undefined;
      const prefix = `model.${r.stack}.layers.${r.index}`;
      if (r.block === 'mlp') return mlp[r.role] && `${prefix}.${mlp[r.role]}`;
      const leaf = attn[r.role];
      return leaf && `${prefix}.${r.block === 'attention' ? 'self_attn' : 'encoder_attn'}.${leaf}`;
    });
  }
  if (family === 'llama' && detected!.modelType !== 'opt') {
    const root = rootIn(modules, /^((?:[A-Za-z0-9_-]+\.)*)layers\.\d+\.(?:self_attn|mlp)\./) ?? 'model.';
    const attn: Names = { query: 'self_attn.q_proj', key: 'self_attn.k_proj', value: 'self_attn.v_proj', qkv: 'self_attn.qkv_proj', output: 'self_attn.o_proj' };
    const mlp: Names = { gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' };
    return convention('llama', (r) => {
      const leaf = r.block === 'attention' ? attn[r.role] : r.block === 'mlp' ? mlp[r.role] : undefined;
      return leaf && !r.stack ? `${root}layers.${r.index}.${leaf}` : undefined;
    });
  }
  return convention('neutral', () => undefined);
}
