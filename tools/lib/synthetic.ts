/**
 * Synthetic token-classification tasks for the shipped demo model (see graphs/README.md). Both
 * tasks draw sequences over the same vocabulary, so a model pre-trained on one has useful token
 * and aggregation features for the other, but the downstream rule differs and needs adaptation.
 *
 * Vocabulary (BERT_TINY_CONFIG.vocabSize = 128):
 *   0 [PAD], 1 [CLS], 2 [SEP], 3 unused; content tokens 4..127.
 *   "low" tokens: 4..65, "high" tokens: 66..127 (62 each).
 *
 * Sequences are `[CLS] t_1 … t_L [SEP]` with L uniform in [minLen, maxLen]; each sequence first
 * draws a bias p ~ U(pLo, pHi) and then every content token is low with probability p.
 *
 *  - `majority` (pre-training): label 1 iff the sequence holds more low tokens than high tokens
 *    (ties are redrawn).
 *  - `keyword` (downstream): label 1 iff one of the KEYWORDS occurs in the sequence. Half the
 *    examples get one or two keywords at random positions; the low/high balance is drawn
 *    independently of the label, so the pre-trained majority signal is noise for this task.
 */
import { Random } from '../../src/util/random.ts';

export const PAD = 0;
export const CLS = 1;
export const SEP = 2;
export const FIRST_CONTENT = 4;
export const VOCAB = 128;
/** Content ids below this are "low". */
export const LOW_END = 66;
/** Downstream keywords: two high tokens and one low token. */
export const KEYWORDS: readonly number[] = [23, 77, 101];

/** `supermajority`: label 1 iff at least this fraction of the content tokens is low. */
export const SUPERMAJORITY = 0.7;

export interface Example {
  input_ids: number[];
  attention_mask: number[];
  token_type_ids: number[];
  labels: number;
}

export type TaskName = 'majority' | 'keyword' | 'supermajority';

export interface TaskOptions {
  minLen?: number;
  maxLen?: number;
  /** Range of the per-sequence probability of a low token. */
  pLo?: number;
  pHi?: number;
  /** Probability that a label is flipped (keeps a pre-trained model's logits moderate). */
  labelNoise?: number;
  /** Most keywords put into a positive `keyword` example (at least one). */
  maxKeywords?: number;
}

const DEFAULT_OPTIONS: Required<TaskOptions> = { minLen: 10, maxLen: 30, pLo: 0.2, pHi: 0.8, labelNoise: 0, maxKeywords: 2 };

function drawContent(rng: Random, len: number, pLow: number, exclude: ReadonlySet<number>): number[] {
  const out: number[] = [];
  while (out.length < len) {
    const low = rng.next() < pLow;
    const t = low ? FIRST_CONTENT + rng.int(LOW_END - FIRST_CONTENT) : LOW_END + rng.int(VOCAB - LOW_END);
    if (!exclude.has(t)) out.push(t);
  }
  return out;
}

function wrap(content: number[], label: number): Example {
  const ids = [CLS, ...content, SEP];
  return { input_ids: ids, attention_mask: ids.map(() => 1), token_type_ids: ids.map(() => 0), labels: label };
}

/** The label `majority` gives a content sequence, or -1 on a tie. */
export function majorityLabel(content: readonly number[]): number {
  let low = 0;
  for (const t of content) if (t >= FIRST_CONTENT && t < LOW_END) low++;
  const high = content.length - low;
  return low === high ? -1 : low > high ? 1 : 0;
}

/** The label `keyword` gives a content sequence. */
export function keywordLabel(content: readonly number[]): number {
  return content.some((t) => KEYWORDS.includes(t)) ? 1 : 0;
}

/** `n` examples of `task`, a pure function of (task, n, seed, options). */
export function makeExamples(task: TaskName, n: number, seed: number, options: TaskOptions = {}): Example[] {
  const o = { ...DEFAULT_OPTIONS, ...options };
  const rng = new Random(seed);
  const noKeywords = new Set(KEYWORDS);
  const out: Example[] = [];
  while (out.length < n) {
    const len = o.minLen + rng.int(o.maxLen - o.minLen + 1);
    const pLow = rng.uniform(o.pLo, o.pHi);
    if (task === 'majority') {
      const content = drawContent(rng, len, pLow, new Set());
      const label = majorityLabel(content);
      if (label < 0) continue;
      out.push(wrap(content, rng.next() < o.labelNoise ? 1 - label : label));
    } else if (task === 'supermajority') {
      const content = drawContent(rng, len, pLow, new Set());
      const low = content.filter((t) => t < LOW_END).length;
      const label = low >= SUPERMAJORITY * len ? 1 : 0;
      out.push(wrap(content, rng.next() < o.labelNoise ? 1 - label : label));
    } else {
      const content = drawContent(rng, len, pLow, noKeywords);
      const label = rng.int(2);
      if (label === 1) {
        const k = 1 + rng.int(o.maxKeywords);
        for (let i = 0; i < k; i++) content[rng.int(len)] = KEYWORDS[rng.int(KEYWORDS.length)]!;
      }
      const clean = keywordLabel(content);
      out.push(wrap(content, rng.next() < o.labelNoise ? 1 - clean : clean));
    }
  }
  return out;
}

/** JSONL text, one example a line. */
export function toJsonl(examples: readonly Example[]): string {
  return examples.map((e) => JSON.stringify(e)).join('\n') + '\n';
}

/** A right-padded batch (to the longest example) as flat int64 arrays. */
export function collate(examples: readonly Example[]): { dims: [number, number]; input_ids: BigInt64Array; attention_mask: BigInt64Array; token_type_ids: BigInt64Array; labels: BigInt64Array } {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.input_ids.length));
  const ids = new BigInt64Array(B * T);
  const mask = new BigInt64Array(B * T);
  const types = new BigInt64Array(B * T);
  examples.forEach((e, b) => {
    e.input_ids.forEach((v, t) => {
      ids[b * T + t] = BigInt(v);
      mask[b * T + t] = BigInt(e.attention_mask[t]!);
      types[b * T + t] = BigInt(e.token_type_ids[t]!);
    });
  });
  return { dims: [B, T], input_ids: ids, attention_mask: mask, token_type_ids: types, labels: BigInt64Array.from(examples, (e) => BigInt(e.labels)) };
}
