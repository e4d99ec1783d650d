/**
 * Every example checked against the model before the first step, so bad data fails with one
 * line naming the example (`file:line` for JSONL, `file row i` for safetensors), what is wrong and
 * what to do, instead of training on garbage or ending in an ONNX Runtime error:
 *
 *  - a field the model needs missing on a line (or present on some lines only);
 *  - token ids that are not integers, negative, or not below the vocabulary size;
 *  - `attention_mask` / `token_type_ids` / per-token labels whose length differs from `input_ids`;
 *  - sequences longer than the model's positions (`--max-length` truncates);
 *  - labels of the wrong kind for the task (a list for seq-cls, one value for token tasks) or
 *    out of range (negative other than −100, not below the head's number of classes).
 *
 * Bounds come from the model (src/data/model-inputs.ts `modelBounds`, the head's class count);
 * a bound the model does not tell is not checked.
 */
import { PeanutError } from '../errors.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import { IGNORE_INDEX, TASK_INFO, isTask, type LabelKind } from './tasks.ts';
import { canFill, withRole, type InputSpec, type ModelBounds } from './model-inputs.ts';
import type { CheckSpec } from './batch-spec.ts';

const bad = (where: string, problem: string, fix: string) => new PeanutError('E_DATA', `${where}: ${problem}; ${fix}`);

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v) : JSON.stringify(v)?.slice(0, 30) ?? String(v));

/** The label kind of `task` (float for unknown tasks, which are never checked as classes). */
const kindOf = (task: string): LabelKind => (isTask(task) ? TASK_INFO[task].labelKind : 'float');

/** What the first token ids check needs: the vocabulary size and the field name. */
function checkId(where: string, field: string, v: unknown, t: number, bound: number | undefined, what: string, fix: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw bad(where, `'${field}' holds ${show(v)} at position ${t}; ${what} are integers`, typeof v === 'number' ? 'store whole numbers' : 'store numbers, not strings (tokenize text with --tokenizer)');
  }
  if (v < 0 || (bound !== undefined && v >= bound)) {
    const range = bound !== undefined ? `the model has ${bound} (0…${bound - 1})` : 'they start at 0';
    throw bad(where, `'${field}' holds ${v} at position ${t}, outside the ${what} the model knows (${range})`, fix);
  }
}

/** Checks one class label (`-100` is skipped by the loss). */
function checkClass(where: string, field: string, v: unknown, t: number | undefined, classes: number | undefined, task: string): void {
  const at = t === undefined ? '' : ` at position ${t}`;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw bad(where, `'${field}' holds ${show(v)}${at}, which is not a class index`, task === 'seq-cls' || task === 'image-cls' ? 'store an integer 0…C−1 (for real-valued targets use --task regression)' : 'store integers 0…C−1, or −100 for tokens the loss skips');
  }
  if (v === IGNORE_INDEX) return;
  if (v < 0 || (classes !== undefined && v >= classes)) {
    const range = classes !== undefined ? `the model's head has ${classes} classes (0…${classes - 1})` : 'classes start at 0';
    throw bad(where, `'${field}' holds ${v}${at}, out of range: ${range}`, 'fix the labels (−100 marks a label the loss skips), or pick the right output with --head');
  }
}

/** Required inputs, the fields each may come from, and the role. */
interface Need {
  input: InputSpec;
  fields: string[];
  label?: string;
}

function needs(spec: CheckSpec, fieldsOf: (input: InputSpec) => string[]): Need[] {
  return spec.inputs.map((raw) => {
    const input = withRole(raw, spec.inputs);
    const label = spec.labels.find((l) => l.name === input.name)?.field;
    return { input, fields: fieldsOf(input), ...(label ? { label } : {}) };
  });
}

/** Whether the data may leave this input out (collation fills it). */
const optional = (n: Need, task: string) => (n.label ? task === 'causal-lm' : canFill(n.input));

/**
 * Checks JSONL examples (`where[i]` names row i: `file:line`).
 * @throws PeanutError E_DATA at the first bad example.
 */
export function checkRows(rows: readonly Record<string, unknown>[], where: readonly string[], spec: CheckSpec, fieldsOf: (input: InputSpec) => string[]): void {
  const { bounds, task } = spec;
  const all = needs(spec, fieldsOf);
  const kind = kindOf(task);
  // A field some lines have and others lack is an error even where collation could fill it.
  const somewhere = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) somewhere.add(k);
  rows.forEach((r, i) => {
    const w = where[i]!;
    const ids = r.input_ids;
    let n: number | undefined;
    for (const need of all) {
      const field = need.fields.find((f) => r[f] !== undefined);
      const name = need.label ?? need.input.name;
      if (field === undefined) {
        const elsewhere = need.fields.find((f) => somewhere.has(f));
        if (elsewhere) throw bad(w, `the example has no '${elsewhere}', which other examples have`, `give every example a '${elsewhere}'`);
        if (optional(need, task)) continue;
        throw bad(w, `the example has no '${name}', which the model needs`, `add '${name}' to every example`);
      }
      const v = r[field];
      const role = need.input.role;
      if (need.label) checkLabel(w, field, v, kind, task, bounds, Array.isArray(ids) ? ids.length : undefined);
      else if (role === 'input_ids') {
        if (!Array.isArray(v) || v.length === 0) throw bad(w, `'${field}' must be a non-empty list of token ids, got ${show(v)}`, 'store the tokenized example (or `text` with --tokenizer)');
        v.forEach((x, t) => checkId(w, field, x, t, bounds.vocab, 'token ids', "tokenize with the model's own tokenizer"));
        n = v.length;
      } else if (role === 'attention_mask' || role === 'token_type_ids' || role === 'position_ids') {
        checkSequence(w, field, v, Array.isArray(ids) ? ids.length : undefined);
        const bound = role === 'token_type_ids' ? bounds.tokenTypes : role === 'attention_mask' ? 2 : bounds.positions;
        const what = role === 'token_type_ids' ? 'token types' : role === 'attention_mask' ? 'mask values (0 or 1)' : 'positions';
        (v as unknown[]).forEach((x, t) => checkId(w, field, x, t, bound, what, role === 'attention_mask' ? 'store 1 for real tokens and 0 for padding' : 'fix the field or leave it out (it is filled as Hugging Face does)'));
      } else checkNumbers(w, field, v);
    }
    if (n !== undefined && bounds.positions !== undefined) {
      const kept = spec.maxLength !== undefined ? Math.min(n, spec.maxLength) : n;
      if (kept > bounds.positions) throw bad(w, `the example has ${kept} tokens, more than the model's ${bounds.positions} positions`, `pass --max-length ${bounds.positions} to truncate`);
    }
  });
}

/** A per-token field: a list as long as `input_ids`. */
function checkSequence(w: string, field: string, v: unknown, n: number | undefined): void {
  if (!Array.isArray(v)) throw bad(w, `'${field}' must be a list with one value per token, got ${show(v)}`, `store '${field}' as a list as long as 'input_ids'`);
  if (n !== undefined && v.length !== n) throw bad(w, `'${field}' has ${v.length} values for ${n} tokens in 'input_ids'`, `give '${field}' one value per token`);
}

function checkNumbers(w: string, field: string, v: unknown): void {
  const ok = (x: unknown): boolean => (Array.isArray(x) ? x.every(ok) : (typeof x === 'number' && Number.isFinite(x)) || typeof x === 'boolean');
  if (!ok(v)) throw bad(w, `'${field}' holds ${show(v)}; expected a number or a list of numbers`, `store '${field}' as numbers`);
}

function checkLabel(w: string, field: string, v: unknown, kind: LabelKind, task: string, bounds: ModelBounds, n: number | undefined): void {
  switch (kind) {
    case 'class':
      if (Array.isArray(v)) throw bad(w, `'${field}' is a list, but ${task} takes one class per example`, 'store one integer label per example (for one label per token use --task token-cls)');
      return checkClass(w, field, v, undefined, bounds.classes, task);
    case 'token-class':
    case 'next-token':
      if (!Array.isArray(v)) throw bad(w, `'${field}' is one value, but ${task} takes one label per token`, `store '${field}' as a list as long as 'input_ids' (−100 where the loss skips a token)`);
      if (n !== undefined && v.length !== n) throw bad(w, `'${field}' has ${v.length} labels for ${n} tokens in 'input_ids'`, 'give one label per token (−100 where the loss skips a token)');
      v.forEach((x, t) => checkClass(w, field, x, t, bounds.classes, task));
      return;
    case 'position':
      if (Array.isArray(v) || typeof v !== 'number' || !Number.isInteger(v)) throw bad(w, `'${field}' holds ${show(v)}; it must be one token index per example`, `store '${field}' as an integer (the answer's token position)`);
      if (v < 0) throw bad(w, `'${field}' is ${v}, a negative position`, 'store the answer\'s token index (0 = the first token; positions past the sequence are ignored by the loss)');
      return;
    case 'float':
      return checkNumbers(w, field, v);
  }
}

// ---- safetensors data ----------------------------------------------------------------------------

const INT_DTYPES = new Set(['I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

/** The first flat index whose value fails `ok`, or −1. */
function firstBad(t: SafeTensor, ok: (v: number) => boolean): number {
  const d = t.data;
  if (d instanceof BigInt64Array) {
    for (let i = 0; i < d.length; i++) if (!ok(Number(d[i]))) return i;
    return -1;
  }
  for (let i = 0; i < d.length; i++) if (!ok(Number(d[i]))) return i;
  return -1;
}

/**
 * Checks safetensors examples (rows of each tensor).
 * @throws PeanutError E_DATA at the first bad row.
 */
export function checkTensors(tensors: ReadonlyMap<string, SafeTensor>, path: string, spec: CheckSpec, fieldOf: (input: InputSpec) => SafeTensor | undefined): void {
  const { bounds, task } = spec;
  const all = needs(spec, () => []);
  const kind = kindOf(task);
  const ids = tensors.get('input_ids');
  const rowOf = (t: SafeTensor, i: number) => Math.floor(i / Math.max(1, t.shape.slice(1).reduce((a, b) => a * b, 1)));
  const at = (row: number) => `${path} row ${row}`;
  for (const need of all) {
    const t = fieldOf(need.input);
    const name = need.label ?? need.input.name;
    if (!t) {
      if (optional(need, task)) continue;
      throw bad(path, `no tensor '${name}', which the model needs (tensors: ${[...tensors.keys()].join(', ')})`, `add '${name}' with one row per example`);
    }
    const role = need.input.role;
    const integer = INT_DTYPES.has(t.dtype);
    if (role === 'input_ids') {
      if (!integer) throw bad(path, `'input_ids' is ${t.dtype}; token ids must be an integer tensor`, 'store them as I64');
      const i = firstBad(t, (v) => v >= 0 && (bounds.vocab === undefined || v < bounds.vocab));
      if (i >= 0) throw bad(at(rowOf(t, i)), `'input_ids' holds ${Number(t.data[i])}, outside the token ids the model knows (${bounds.vocab !== undefined ? `0…${bounds.vocab - 1}` : '≥ 0'})`, "tokenize with the model's own tokenizer");
      const T = t.shape[1] ?? 1;
      if (bounds.positions !== undefined && T > bounds.positions) throw bad(path, `rows are ${T} tokens long, more than the model's ${bounds.positions} positions`, `store at most ${bounds.positions} tokens per row`);
    } else if ((role === 'attention_mask' || role === 'token_type_ids' || role === 'position_ids') && ids && t.shape.join() !== ids.shape.join()) {
      throw bad(path, `'${name}' has shape [${t.shape.join(', ')}] but 'input_ids' has [${ids.shape.join(', ')}]`, `give '${name}' one value per token`);
    }
    if (!need.label) continue;
    const perToken = kind === 'token-class' || kind === 'next-token';
    const rank = t.shape.length - (t.shape.at(-1) === 1 && t.shape.length > 1 ? 1 : 0);
    if ((kind === 'class' || kind === 'position') && rank !== 1) throw bad(path, `'${name}' has shape [${t.shape.join(', ')}], but ${task} takes one value per example`, `store '${name}' as [examples]${kind === 'class' ? ' (for per-token labels use --task token-cls)' : ''}`);
    if (perToken && ids && t.shape.join() !== ids.shape.join()) throw bad(path, `'${name}' has shape [${t.shape.join(', ')}], but ${task} takes one label per token of 'input_ids' [${ids.shape.join(', ')}]`, `store '${name}' with the shape of 'input_ids'`);
    if (kind === 'float') continue;
    if (!integer) throw bad(path, `'${name}' is ${t.dtype}; ${task} labels are integers`, 'store them as I64');
    const ok = kind === 'position' ? (v: number) => v >= 0 : (v: number) => v === IGNORE_INDEX || (v >= 0 && (bounds.classes === undefined || v < bounds.classes));
    const i = firstBad(t, ok);
    if (i >= 0) {
      const v = Number(t.data[i]);
      throw bad(at(rowOf(t, i)), kind === 'position' ? `'${name}' is ${v}, a negative position` : `'${name}' holds ${v}, out of range${bounds.classes !== undefined ? `: the model's head has ${bounds.classes} classes (0…${bounds.classes - 1})` : ''}`, 'fix the labels (−100 marks a label the loss skips)');
    }
  }
}
