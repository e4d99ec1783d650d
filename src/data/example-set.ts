/**
 * Training and evaluation data as a set of examples that can be gathered into batches.
 *
 * Sources (DESIGN.md section 3):
 *  - safetensors: one tensor per field, first dim = examples; batches are row gathers (the file
 *    is already padded, so shapes are kept as stored);
 *  - JSONL: one example a line with `input_ids` (+ `attention_mask`, `token_type_ids`, labels),
 *    or `text` (+ `text_pair`) and a tokenizer. Sequences are right-padded per batch to the
 *    longest example in that batch (dynamic padding), as Hugging Face's collators do, or to the
 *    model's sequence length when its graph fixes one.
 *
 * Inputs the data does not carry are filled by src/data/model-inputs.ts (attention mask, token
 * types, position ids, empty caches, …); causal-LM `labels` default to `input_ids` with −100 on
 * padding, and per-token labels are padded with −100. `check` tests every example against the
 * model before training starts (src/data/check-examples.ts).
 */
import { PeanutError } from '../errors.ts';
import { parseSafetensors, type SafeTensor } from '../formats/safetensors.ts';
import { DataType as DT, bf16BitsToFloat, dtypeName, floatToBf16Bits, floatToHalfBits, halfBitsToFloat } from '../onnx/dtype.ts';
import type { TextTokenizer } from './tokenize.ts';
import { IGNORE_INDEX, TASK_INFO, isTask, perTokenLabels, type LabelInput } from './tasks.ts';
import { fillInput, staticSequenceLength, withRole, type InputRole, type InputSpec } from './model-inputs.ts';
import { checkRows, checkTensors } from './check-examples.ts';
import type { CheckSpec, CollateSpec } from './batch-spec.ts';

export type { InputSpec };

/** Element types a batch tensor can have (onnxruntime's names). */
export type BatchType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

/** One batch tensor, ready to wrap in an ort.Tensor (float16/bfloat16 as raw Uint16 bits). */
export interface BatchTensor {
  type: BatchType;
  dims: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array;
}

export type { CheckSpec, CollateSpec };

export interface ExampleSet {
  readonly size: number;
  readonly fields: readonly string[];
  /** Gathers `indices` into one batch shaped for `spec`. */
  batch(indices: readonly number[], spec: CollateSpec): Map<string, BatchTensor>;
  /**
   * Checks every example against the model: fields present, ids and labels of the right kind
   * and in range, sequences that fit. @throws PeanutError E_DATA naming the example (`file:line`).
   */
  check(spec: CheckSpec): void;
}

/** The data field names an input may be given under: its own, and its role's usual name. */
const ROLE_FIELDS: Partial<Record<InputRole, string>> = { input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids', position_ids: 'position_ids' };

/** Fields that hold one value per token, padded with `pad` (labels: −100). */
const SEQUENCE_ROLES = new Set<InputRole>(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);

/** The element type of a batch tensor for a graph input's ONNX type. */
export function batchTypeFor(elemType: number, name: string): BatchType {
  switch (elemType) {
    case DT.FLOAT:
      return 'float32';
    case DT.FLOAT16:
      return 'float16';
    case DT.BFLOAT16:
      return 'bfloat16';
    case DT.DOUBLE:
      return 'float64';
    case DT.INT64:
      return 'int64';
    case DT.INT32:
      return 'int32';
    case DT.BOOL:
      return 'bool';
    case DT.UINT8:
      return 'uint8';
    default:
      throw new PeanutError('E_DTYPE', `model input '${name}' has element type ${dtypeName(elemType)}; data inputs must be float32/16, bfloat16, float64, int64, int32, bool or uint8`);
  }
}

/** A batch array of `type` holding `values` (zeros of length `n` when `values` is absent). */
function makeData(type: BatchType, values: ArrayLike<number> | undefined, n = values?.length ?? 0): BatchTensor['data'] {
  switch (type) {
    case 'float32':
      return values ? Float32Array.from(values) : new Float32Array(n);
    case 'float64':
      return values ? Float64Array.from(values) : new Float64Array(n);
    case 'int32':
      return values ? Int32Array.from(values, Math.trunc) : new Int32Array(n);
    case 'bool':
    case 'uint8':
      return values ? Uint8Array.from(values, (v) => (type === 'bool' ? (v ? 1 : 0) : v)) : new Uint8Array(n);
    case 'float16':
    case 'bfloat16': {
      const conv = type === 'float16' ? floatToHalfBits : floatToBf16Bits;
      return values ? Uint16Array.from(values, (v) => conv(v)) : new Uint16Array(n);
    }
    case 'int64': {
      const out = new BigInt64Array(n);
      if (values) for (let i = 0; i < n; i++) out[i] = BigInt(Math.trunc(values[i]!));
      return out;
    }
  }
}

/** [B] → [B, 1] (or [B, …, 1]) when the graph declares a higher rank with trailing 1s. */
function fitRank(dims: number[], spec: InputSpec): number[] {
  const want = spec.dims;
  if (!want || want.length <= dims.length) return dims;
  const extra = want.slice(dims.length);
  return extra.every((d) => d === 1) ? [...dims, ...extra.map(() => 1)] : dims;
}

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** The label input a graph input is, if any. */
const labelOf = (spec: CollateSpec, name: string) => spec.labels.find((l) => l.name === name);

/** The data fields a label may be given under (`labels` also as `label` where the task allows). */
export function labelFields(task: string, label: LabelInput): string[] {
  const aliases = isTask(task) && TASK_INFO[task].labelFields.length === 1 ? TASK_INFO[task].labelAliases : [];
  return [label.field, ...(label.field === 'labels' ? aliases : [])];
}

/** The data fields an input may be given under. */
function inputFields(spec: CollateSpec, input: InputSpec): string[] {
  const label = labelOf(spec, input.name);
  if (label) return labelFields(spec.task, label);
  const alias = ROLE_FIELDS[withRole(input, spec.inputs).role!];
  return alias && alias !== input.name ? [input.name, alias] : [input.name];
}

function missing(name: string, fields: readonly string[]): PeanutError {
  return new PeanutError('E_DATA', `the data has no field '${name}', which the model needs (fields found: ${fields.join(', ') || 'none'})`);
}

// ---- safetensors data ----------------------------------------------------------------------------

const numberCache = new WeakMap<SafeTensor, ArrayLike<number>>();

/** A stored tensor's values as numbers (int64 and half precision converted, once). */
export function safeToNumbers(t: SafeTensor): ArrayLike<number> {
  let hit = numberCache.get(t);
  if (hit) return hit;
  if (t.data instanceof BigInt64Array) hit = Float64Array.from(t.data, Number);
  else if (t.dtype === 'F16') hit = Float32Array.from(t.data as Uint16Array, halfBitsToFloat);
  else if (t.dtype === 'BF16') hit = Float32Array.from(t.data as Uint16Array, bf16BitsToFloat);
  else return t.data as ArrayLike<number>;
  numberCache.set(t, hit);
  return hit;
}

/** Whether a stored tensor already holds `type`'s representation (then rows are block copies). */
function storedAs(t: SafeTensor, type: BatchType): boolean {
  const want: Record<BatchType, SafeTensor['dtype'][]> = { float32: ['F32'], float16: ['F16'], bfloat16: ['BF16'], float64: ['F64'], int64: ['I64'], int32: ['I32'], bool: ['BOOL'], uint8: ['U8'] };
  return want[type].includes(t.dtype);
}

/** Rows `indices` of `t` as a batch array of `type`. */
function gatherRows(t: SafeTensor, indices: readonly number[], type: BatchType): BatchTensor['data'] {
  const per = numel(t.shape.slice(1));
  if (storedAs(t, type)) {
    const src = t.data as BatchTensor['data'];
    const out = new (src.constructor as new (n: number) => BatchTensor['data'])(indices.length * per);
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

/** safetensors data: every tensor has the examples along its first dim. */
class TensorExampleSet implements ExampleSet {
  readonly size: number;
  readonly fields: string[];
  constructor(
    readonly tensors: Map<string, SafeTensor>,
    readonly path: string,
  ) {
    this.fields = [...tensors.keys()];
    const sizes = new Set([...tensors.values()].map((t) => t.shape[0] ?? 1));
    if (sizes.size !== 1) throw new PeanutError('E_DATA', `${path}: tensors disagree on the number of examples (first dims ${[...sizes].join(', ')}); every tensor holds one row per example`);
    this.size = [...sizes][0] ?? 0;
    if (this.size === 0) throw new PeanutError('E_DATA', `${path} holds no examples (its tensors have 0 rows); write one row per example`);
  }

  #field(input: InputSpec, spec: CollateSpec): SafeTensor | undefined {
    for (const f of inputFields(spec, input)) {
      const t = this.tensors.get(f);
      if (t) return t;
    }
    return undefined;
  }

  #rows(t: SafeTensor, indices: readonly number[]): number[] {
    const per = numel(t.shape.slice(1));
    const src = safeToNumbers(t);
    const values: number[] = [];
    for (const i of indices) for (let j = 0; j < per; j++) values.push(src[i * per + j]!);
    return values;
  }

  batch(indices: readonly number[], spec: CollateSpec): Map<string, BatchTensor> {
    const out = new Map<string, BatchTensor>();
    const ids = this.tensors.get('input_ids');
    const B = indices.length;
    const T = ids?.shape[1] ?? 1;
    const maskT = this.tensors.get('attention_mask');
    const mask = maskT && maskT.shape[1] === T ? this.#rows(maskT, indices) : undefined;
    const lengths = Array.from({ length: B }, (_, b) => (mask ? mask.slice(b * T, (b + 1) * T).reduce((a, v) => a + v, 0) : T));
    for (const input of spec.inputs) {
      const type = batchTypeFor(input.elemType, input.name);
      const t = this.#field(input, spec);
      if (t) {
        out.set(input.name, { type, dims: fitRank([B, ...t.shape.slice(1)], input), data: gatherRows(t, indices, type) });
        continue;
      }
      const label = labelOf(spec, input.name);
      if (label && spec.task === 'causal-lm' && ids) {
        const values = this.#rows(ids, indices).map((v, i) => (mask && mask[i] === 0 ? IGNORE_INDEX : v));
        out.set(input.name, { type, dims: [B, T], data: makeData(type, values) });
        continue;
      }
      const fill = label || !ids ? undefined : fillInput(withRole(input, spec.inputs), { B, T, lengths }, mask);
      if (!fill) throw missing(label?.field ?? input.name, this.fields);
      out.set(input.name, { type, dims: fill.dims, data: makeData(type, fill.values, numel(fill.dims)) });
    }
    return out;
  }

  check(spec: CheckSpec): void {
    checkTensors(this.tensors, this.path, spec, (input) => this.#field(input, spec));
  }
}

// ---- JSONL data ----------------------------------------------------------------------------------

/** A JSONL example after tokenization: sequences and other values by field. */
export type Row = Record<string, unknown>;

function flatten(v: unknown, dims: number[], out: number[], where: string, field: string, depth = 0): void {
  if (Array.isArray(v)) {
    if (dims.length <= depth) dims.push(v.length);
    else if (dims[depth] !== v.length) throw new PeanutError('E_DATA', `${where}: field '${field}' is ragged; every example must have the same shape except the sequence length`);
    for (const x of v) flatten(x, dims, out, where, field, depth + 1);
  } else if (typeof v === 'number' || typeof v === 'boolean') {
    out.push(Number(v));
  } else {
    throw new PeanutError('E_DATA', `${where}: field '${field}' holds ${JSON.stringify(v)?.slice(0, 40)}; expected a number or an array of numbers`);
  }
}

/** JSONL data: padded per batch. */
class RowExampleSet implements ExampleSet {
  readonly fields: string[];
  constructor(
    readonly rows: Row[],
    /** Where each row came from (`file:line`), for messages. */
    readonly where: string[],
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
    const T = staticSequenceLength(spec.inputs) ?? Math.max(1, ...lengths);
    const B = rows.length;
    if (lengths.some((n) => n > T)) {
      const b = lengths.findIndex((n) => n > T);
      throw new PeanutError('E_DATA', `${this.where[indices[b]!]}: the example has ${lengths[b]} tokens; the model takes ${T}; pass --max-length ${T} to truncate`);
    }
    const padded = (field: string, pad: number) => {
      const values: number[] = new Array(B * T).fill(pad);
      rows.forEach((r, b) => {
        const src = r[field];
        if (!Array.isArray(src)) return;
        for (let t = 0; t < lengths[b]!; t++) values[b * T + t] = Number(src[t] ?? pad);
      });
      return { values, dims: [B, T] };
    };
    const present = (f: string) => rows.every((r) => r[f] !== undefined);
    const maskField = rows.length && present('attention_mask') ? 'attention_mask' : undefined;
    const mask = maskField ? padded(maskField, 0).values : undefined;
    const out = new Map<string, BatchTensor>();
    for (const input of spec.inputs) {
      const type = batchTypeFor(input.elemType, input.name);
      const name = input.name;
      const label = labelOf(spec, name);
      const role = withRole(input, spec.inputs).role!;
      const field = inputFields(spec, input).find(present);
      let res: { values?: number[]; dims: number[] } | undefined;
      if (role === 'input_ids' && field) res = padded(field, this.padId);
      else if (field && (SEQUENCE_ROLES.has(role) || (label && perTokenLabels(spec.task) && Array.isArray(rows[0]![field])))) {
        res = padded(field, label ? IGNORE_INDEX : 0);
      } else if (field) {
        const values: number[] = [];
        const dims: number[] = [];
        rows.forEach((r, b) => {
          const d: number[] = [];
          flatten(r[field], d, values, this.where[indices[b]!]!, field);
          if (b === 0) dims.push(...d);
        });
        res = { values, dims: [B, ...dims] };
      } else if (label && spec.task === 'causal-lm') {
        const ids = padded('input_ids', IGNORE_INDEX);
        res = { dims: ids.dims, values: ids.values.map((v, i) => (mask && mask[i] === 0 ? IGNORE_INDEX : v)) };
      } else if (!label) res = fillInput(withRole(input, spec.inputs), { B, T, lengths }, mask);
      if (!res) throw missing(label?.field ?? name, this.fields);
      out.set(name, { type, dims: fitRank(res.dims, input), data: makeData(type, res.values, numel(res.dims)) });
    }
    return out;
  }

  check(spec: CheckSpec): void {
    checkRows(this.rows, this.where, spec, (input) => inputFields(spec, input));
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
      throw new PeanutError('E_DATA', `${what}:${i + 1}: not valid JSON (${(err as Error).message}); each line must be one JSON object`);
    }
  });
  return out;
}

/** Checks example objects and tokenizes those given as `text` (`where(i)` names example i in errors). */
function prepareRows(items: ReadonlyArray<{ row: unknown; line: number }>, what: string, where: (line: number) => string, tokenizer?: TextTokenizer): { rows: Row[]; where: string[] } {
  const rows: Row[] = [];
  const places: string[] = [];
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
    places.push(where(line));
  }
  if (rows.length === 0) throw new PeanutError('E_DATA', `${what} holds no examples; write one JSON example a line, e.g. {"input_ids": [101, 2023, 102], "labels": 1}`);
  return { rows, where: places };
}

/**
 * Examples from JSONL text (one JSON object a line). `what` names the source in messages (a file
 * path: errors say `<what>:<line>`).
 */
export function exampleSetFromJsonl(text: string, what: string, opts: { tokenizer?: TextTokenizer } = {}): ExampleSet {
  const { rows, where } = prepareRows(parseJsonl(text, what), what, (line) => `${what}:${line}`, opts.tokenizer);
  return new RowExampleSet(rows, where, opts.tokenizer?.padId ?? 0);
}

/** Examples from example objects (the rows of a JSONL file, already parsed). */
export function exampleSetFromRows(rows: readonly unknown[], what: string, opts: { tokenizer?: TextTokenizer } = {}): ExampleSet {
  const prepared = prepareRows(rows.map((row, i) => ({ row, line: i + 1 })), what, (i) => `${what}[${i - 1}]`, opts.tokenizer);
  return new RowExampleSet(prepared.rows, prepared.where, opts.tokenizer?.padId ?? 0);
}

/** Examples from a safetensors file's bytes: one tensor per field, examples along the first dim. */
export function exampleSetFromSafetensors(bytes: Uint8Array, what: string): ExampleSet {
  const { tensors } = parseSafetensors(bytes, what);
  if (tensors.size === 0) throw new PeanutError('E_DATA', `${what} holds no tensors; write one tensor per field (input_ids, labels, …) with one row per example`);
  return new TensorExampleSet(tensors, what);
}

/**
 * How many label positions a batch's loss averages over: the counted tokens for per-token tasks
 * (shifted for causal LM), otherwise the number of examples. Used to weight per-batch losses in
 * evaluation.
 */
export function lossWeight(batch: Map<string, BatchTensor>, spec: CollateSpec): number {
  const first = spec.labels[0];
  const labels = first ? batch.get(first.name) : undefined;
  if (!labels) return 0;
  if (!perTokenLabels(spec.task)) return labels.dims[0] ?? 0;
  const [B = 0, T = 0] = labels.dims;
  const from = spec.task === 'causal-lm' ? 1 : 0;
  let n = 0;
  for (let b = 0; b < B; b++) for (let t = from; t < T; t++) if (Number(labels.data[b * T + t]) !== IGNORE_INDEX) n++;
  return n;
}
