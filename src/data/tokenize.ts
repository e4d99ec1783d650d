/**
 * Tokenization of a JSONL `text` field with a Hugging Face `tokenizer.json`, through
 * `@huggingface/tokenizers` (the pure-JS port of the Rust library, maintained by Hugging Face).
 * A `tokenizer_config.json` beside the tokenizer file is read when present (special tokens,
 * padding token), as transformers does.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { PeanutError } from '../errors.ts';

export interface TextTokenizer {
  /** Token ids, attention mask and token type ids of one text (or a pair). */
  encode(text: string, pair?: string): { inputIds: number[]; attentionMask: number[]; tokenTypeIds: number[] };
  /** Id used for right-padding. */
  readonly padId: number;
}

/**
 * A tokenizer from the contents of `tokenizer.json` and, if there is one, `tokenizer_config.json`
 * (files are read by src/node/data-files.ts). `what` names the source in messages.
 */
export function tokenizerFromJson(json: Record<string, unknown>, config: Record<string, unknown>, what: string): TextTokenizer {
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (err) {
    throw new PeanutError('E_DATA', `cannot load tokenizer ${what}: ${(err as Error).message}`);
  }
  const padToken = typeof config.pad_token === 'string' ? config.pad_token : (config.pad_token as { content?: string } | undefined)?.content;
  const padding = json.padding as { pad_id?: number } | null | undefined;
  const padId = padding?.pad_id ?? (padToken !== undefined ? tok.token_to_id(padToken) : undefined) ?? 0;
  return {
    padId,
    encode(text, pair) {
      const e = tok.encode(text, { text_pair: pair ?? null, return_token_type_ids: true });
      return { inputIds: e.ids, attentionMask: e.attention_mask, tokenTypeIds: e.token_type_ids ?? e.ids.map(() => 0) };
    },
  };
}
