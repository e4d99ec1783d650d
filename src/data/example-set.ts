/**
 * Training and evaluation data as a set of examples that can be gathered into batches.
 *
 * Sources (DESIGN.md section 3):
 *  - safetensors: one tensor per field, first dim = examples; batches are row gathers (the file
 *    is already padded, so shapes are kept as stored);
 *  - JSONL: one example a line with `input_ids` (+ `attention_mask`, `token_type_ids`, `labels`),
 *    or `text` (+ `text_pair`) and a tokenizer. Sequences are right-padded per batch to the
 *    longest example in that batch (dynamic padding), as Hugging Face's collators do.
 *
 * Missing model inputs are filled the way transformers does: `attention_mask` = 1 on real tokens,
 * `token_type_ids` = 0, and causal-LM `labels` = `input_ids` with −100 on padding.
 */
import { PeanutError } from '../errors.ts';
import { parseSafetensors, type SafeTensor } from '../formats/safetensors.ts';
import { DataType as DT, dtypeName } from '../onnx/dtype.ts';
import type { TextTokenizer } from './tokenize.ts';
import { IGNORE_INDEX } from './tasks.ts';

/** One batch tensor, ready to wrap in an ort.Tensor. */
export interface BatchTensor {
  type: 'float32' | 'int64' | 'int32';
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

/** What the model wants for one graph input. */
export interface InputSpec {
  name: string;
  /** ONNX element type. */
  elemType: number;
  /** Declared dims, when known: a per-example value is reshaped to the declared rank ([B] → [B, 1]). */
  dims?: ReadonlyArray<number | string | null>;
}

/** [B] → [B, 1] (or [B, …, 1]) when the graph declares a higher rank with trailing 1s. */
function fitRank(dims: number[], spec: InputSpec): number[] {
  const want = spec.dims;
  if (!want || want.length <= dims.length) return dims;
  const extra = want.slice(dims.length);
  return extra.every((d) => d === 1) ? [...dims, ...extra.map(() => 1)] : dims;
}

export interface CollateSpec {
  /** Every data input of the graph (the labels input included). */
  inputs: readonly InputSpec[];
  /** Name of the labels input. */
  labels: string;
  task: string;
  /** Truncate sequences to this many tokens. */
  maxLength?: number;
}

export interface ExampleSet {
  readonly size: number;
  readonly fields: readonly string[];
  /** Gathers `indices` into one batch shaped for `spec`. */
  batch(indices: readonly number[], spec: CollateSpec): Map<string, BatchTensor>;
}

const LABEL_ALIASES = ['labels', 'label'];

function typeFor(elemType: number, name: string): BatchTensor['type'] {
  if (elemType === DT.FLOAT) return 'float32';
  if (elemType === DT.INT64) return 'int64';
  if (elemType === DT.INT32) return 'int32';
  throw new PeanutError('E_DTYPE', `model input '${name}' has element type ${dtypeName(elemType)}; data inputs must be float32, int64 or int32`);
}

function makeData(type: BatchTensor['type'], values: ArrayLike<number>): BatchTensor['data'] {
  if (type === 'float32') return Float32Array.from(values);
  if (type === 'int32') return Int32Array.from(values);
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]!));
  return out;
}

/**
 * Rows `indices` of `t` as a batch array of `type`: a block copy when the stored type already is
 * the wanted one (the common case: F32 features, I64 ids), else converted value by value.
 */
function gatherRows(t: SafeTensor, indices: readonly number[], type: BatchTensor['type']): BatchTensor['data'] {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const same = (type === 'float32' && t.data instanceof Float32Array) || (type === 'int64' && t.data instanceof BigInt64Array) || (type === 'int32' && t.data instanceof Int32Array);
  if (same) {
    const src = t.data as Float32Array | BigInt64Array | Int32Array;
    const out = new (src.constructor as Float32ArrayConstructor | BigInt64ArrayConstructor | Int32ArrayConstructor)(indices.length * per);
    indices.forEach((i, b) => out.set(src.subarray(i * per, (i + 1) * per) as never, b * per));
    return out;
  }
  const src = safeToNumbers(t);
  const values = new Array<number>(indices.length * per);
  indices.forEach((i, b) => {
    for (let j = 0; j < per; j++) values[b * per + j] = src[i * per + j]!;
  });
  return makeData(type, values);
}

const numberCache = new WeakMap<SafeTensor, ArrayLike<number>>();

function safeToNumbers(t: SafeTensor): ArrayLike<number> {
  if (t.data instanceof BigInt64Array) {
    let hit = numberCache.get(t);
    if (!hit) numberCache.set(t, (hit = Float64Array.from(t.data, Number)));
    return hit;
  }
  if (t.dtype === 'F16' || t.dtype === 'BF16') throw new PeanutError('E_DTYPE', `half-precision data tensors are not supported; store data as F32/I64`);
  return t.data as ArrayLike<number>;
}

/** safetensors data: every tensor has the examples along its first dim. */
class TensorExampleSet implements ExampleSet {
  readonly size: number;
  readonly fields: string[];
  constructor(
    readonly tensors: Map<string, SafeTensor>,
    path: string,
  ) {
    this.fields = [...tensors.keys()];
    const sizes = new Set([...tensors.values()].map((t) => t.shape[0] ?? 1));
    if (sizes.size !== 1) throw new PeanutError('E_DATA', `${path}: tensors disagree on the number of examples (first dims ${[...sizes].join(', ')})`);
    this.size = [...sizes][0] ?? 0;
  }

  #rows(t: SafeTensor, indices: readonly number[]): { values: number[]; dims: number[] } {
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const src = safeToNumbers(t);
    const values: number[] = [];
    for (const i of indices) for (let j = 0; j < per; j++) values.push(src[i * per + j]!);
    return { values, dims: [indices.length, ...t.shape.slice(1)] };
  }

  batch(indices: readonly number[], spec: CollateSpec): Map<string, BatchTensor> {
    const out = new Map<string, BatchTensor>();
    const get = (name: string) => this.tensors.get(name) ?? (name === spec.labels ? LABEL_ALIASES.map((a) => this.tensors.get(a)).find(Boolean) : undefined);
    const ids = this.tensors.get('input_ids');
    for (const input of spec.inputs) {
      const type = typeFor(input.elemType, input.name);
      const t = get(input.name);
      if (t) {
        const dims = fitRank([indices.length, ...t.shape.slice(1)], input);
        out.set(input.name, { type, dims, data: gatherRows(t, indices, type) });
        continue;
      }
      const fill = defaultFor(input.name, spec, ids ? this.#rows(ids, indices) : undefined, () => {
        const mask = this.tensors.get('attention_mask');
        return mask ? this.#rows(mask, indices).values : undefined;
      });
      if (!fill) throw missing(input.name, this.fields);
      out.set(input.name, { type, dims: fill.dims, data: makeData(type, fill.values) });
    }
    return out;
  }
}

function missing(name: string, fields: readonly string[]): PeanutError {
  return new PeanutError('E_DATA', `the data has no field '${name}', which the model needs (fields found: ${fields.join(', ') || 'none'})`);
}

/** Values for an input the data does not carry, when transformers has a convention for it. */
function defaultFor(
  name: string,
  spec: CollateSpec,
  ids: { values: number[]; dims: number[] } | undefined,
  mask: () => number[] | undefined,
): { values: number[]; dims: number[] } | undefined {
  if (!ids) return undefined;
  if (name === 'attention_mask') return { values: ids.values.map(() => 1), dims: ids.dims };
  if (name === 'token_type_ids' || name === 'position_ids') {
    if (name === 'position_ids') {
      const per = ids.dims[1] ?? 1;
      return { values: ids.values.map((_, i) => i % per), dims: ids.dims };
    }
    return { values: ids.values.map(() => 0), dims: ids.dims };
  }
  if (name === spec.labels && spec.task === 'causal-lm') {
    const m = mask();
    return { values: ids.values.map((v, i) => (m && m[i] === 0 ? IGNORE_INDEX : v)), dims: ids.dims };
  }
  return undefined;
}

/** A JSONL example after tokenization: sequences and other values by field. */
type Row = Record<string, number | number[] | unknown>;

function flatten(v: unknown, dims: number[], out: number[], depth = 0): void {
  if (Array.isArray(v)) {
    if (dims.length <= depth) dims.push(v.length);
    else if (dims[depth] !== v.length) throw new PeanutError('E_DATA', 'a nested array field is ragged; every example must have the same shape except the sequence length');
    for (const x of v) flatten(x, dims, out, depth + 1);
  } else if (typeof v === 'number' || typeof v === 'boolean') {
    out.push(Number(v));
  } else {
    throw new PeanutError('E_DATA', `expected a number or an array of numbers, got ${JSON.stringify(v)?.slice(0, 40)}`);
  }
}

const SEQUENCE_FIELDS = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);

/** JSONL data: padded per batch. */
class RowExampleSet implements ExampleSet {
  readonly fields: string[];
  constructor(
    readonly rows: Row[],
    readonly padId: number,
  ) {
    const f = new Set<string>();
    for (const r of rows) for (const k of Object.keys(r)) f.add(k);
    this.fields = [...f];
  }
  get size(): number {
    return this.rows.length;
  }

  batch(indices: readonly number[], spec: CollateSpec): Map<string, BatchTensor> {
    const rows = indices.map((i) => this.rows[i]!);
    const seqLen = (r: Row) => {
      const ids = r.input_ids;
      const n = Array.isArray(ids) ? ids.length : 0;
      return spec.maxLength ? Math.min(n, spec.maxLength) : n;
    };
    const lengths = rows.map(seqLen);
    const T = Math.max(1, ...lengths);
    const B = rows.length;
    const padded = (field: string, pad: number, fallback?: (r: Row, t: number) => number) => {
      const values: number[] = new Array(B * T).fill(pad);
      rows.forEach((r, b) => {
        const src = r[field];
        for (let t = 0; t < lengths[b]!; t++) {
          const v = Array.isArray(src) ? src[t] : fallback?.(r, t);
          values[b * T + t] = Number(v ?? pad);
        }
      });
      return { values, dims: [B, T] };
    };
    const out = new Map<string, BatchTensor>();
    for (const input of spec.inputs) {
      const type = typeFor(input.elemType, input.name);
      const name = input.name;
      const isLabels = name === spec.labels;
      const field = isLabels ? [name, ...LABEL_ALIASES].find((k) => rows.every((r) => r[k] !== undefined)) : rows.every((r) => r[name] !== undefined) ? name : undefined;
      let res: { values: number[]; dims: number[] };
      if (name === 'input_ids') res = padded('input_ids', this.padId);
      else if (field && (SEQUENCE_FIELDS.has(name) || (isLabels && spec.task === 'causal-lm' && Array.isArray(rows[0]![field])))) {
        res = padded(field, isLabels ? IGNORE_INDEX : 0);
      } else if (field) {
        const values: number[] = [];
        const dims: number[] = [];
        for (const r of rows) {
          const d: number[] = [];
          flatten(r[field], d, values);
          if (dims.length === 0) dims.push(...d);
        }
        res = { values, dims: [B, ...dims] };
      } else if (name === 'attention_mask') res = padded('attention_mask', 0, () => 1);
      else if (name === 'token_type_ids' || name === 'position_ids') res = padded(name, 0, (_r, t) => (name === 'position_ids' ? t : 0));
      else if (isLabels && spec.task === 'causal-lm') res = padded('input_ids', IGNORE_INDEX);
      else throw missing(name, this.fields);
      out.set(name, { type, dims: fitRank(res.dims, input), data: makeData(type, res.values) });
    }
    return out;
  }
}

/** Parses JSONL text into example objects (`<what>:<line>` in errors). */
function parseJsonl(text: string, what: string): Array<{ row: unknown; line: number }> {
  const out: Array<{ row: unknown; line: number }> = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push({ row: JSON.parse(line), line: i + 1 });
    } catch (err) {
      throw new PeanutError('E_DATA', `${what}:${i + 1}: not valid JSON (${(err as Error).message})`);
    }
  });
  return out;
}

/** Checks example objects and tokenizes those given as `text` (`where(i)` names example i in errors). */
function prepareRows(items: ReadonlyArray<{ row: unknown; line: number }>, what: string, where: (line: number) => string, tokenizer?: TextTokenizer): Row[] {
  const rows: Row[] = [];
  for (const { row: value, line } of items) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PeanutError('E_DATA', `${where(line)}: each example must be a JSON object`);
    let row = value as Row;
    if (row.input_ids === undefined && typeof row.text === 'string') {
      if (!tokenizer) throw new PeanutError('E_DATA', `${where(line)}: the example has 'text' but no 'input_ids'; pass --tokenizer tokenizer.json to tokenize it`);
      const e = tokenizer.encode(row.text, typeof row.text_pair === 'string' ? row.text_pair : undefined);
      row = { ...row, input_ids: e.inputIds, attention_mask: e.attentionMask, token_type_ids: e.tokenTypeIds };
      delete row.text;
      delete row.text_pair;
    }
    rows.push(row);
  }
  if (rows.length === 0) throw new PeanutError('E_DATA', `${what} holds no examples`);
  return rows;
}

/**
 * Examples from JSONL text (one JSON object a line). `what` names the source in messages (a file
 * path: errors say `<what>:<line>`).
 */
export function exampleSetFromJsonl(text: string, what: string, opts: { tokenizer?: TextTokenizer } = {}): ExampleSet {
  const rows = prepareRows(parseJsonl(text, what), what, (line) => `${what}:${line}`, opts.tokenizer);
  return new RowExampleSet(rows, opts.tokenizer?.padId ?? 0);
}

/** Examples from example objects (the rows of a JSONL file, already parsed). */
export function exampleSetFromRows(rows: readonly unknown[], what: string, opts: { tokenizer?: TextTokenizer } = {}): ExampleSet {
  const prepared = prepareRows(rows.map((row, i) => ({ row, line: i + 1 })), what, (i) => `${what}[${i - 1}]`, opts.tokenizer);
  return new RowExampleSet(prepared, opts.tokenizer?.padId ?? 0);
}

/** Examples from a safetensors file's bytes: one tensor per field, examples along the first dim. */
export function exampleSetFromSafetensors(bytes: Uint8Array, what: string): ExampleSet {
  const { tensors } = parseSafetensors(bytes, what);
  if (tensors.size === 0) throw new PeanutError('E_DATA', `${what} holds no tensors`);
  return new TensorExampleSet(tensors, what);
}

/**
 * How many label positions a batch's loss averages over: for causal LM the shifted labels that
 * are not −100, otherwise the number of examples. Used to weight per-batch losses in evaluation.
 */
export function lossWeight(batch: Map<string, BatchTensor>, spec: CollateSpec): number {
  const labels = batch.get(spec.labels);
  if (!labels) return 0;
  if (spec.task !== 'causal-lm') return labels.dims[0] ?? 0;
  const [B = 0, T = 0] = labels.dims;
  let n = 0;
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) if (Number(labels.data[b * T + t]) !== IGNORE_INDEX) n++;
  return n;
}
