/**
 * The batches a gradient model's shapes are probed with, made the way training makes its
 * batches: token inputs, masks, position ids, empty caches and labels go through the same
 * collation (src/data/example-set.ts, which asks src/data/model-inputs.ts for every input the
 * examples leave out), so the probe runs the model exactly as a training step will — the past
 * length 0, the attention mask as long as the batch, a static cache written at position 0.
 * Inputs no collation can make up (pixel values, hidden states, encoder caches) are synthetic
 * tensors of their declared shape.
 */
import { PeanutError } from '../errors.ts';
import { exampleSetFromRows, type CollateSpec } from '../data/example-set.ts';
import { fillInput, withRole, type InputSpec } from '../data/model-inputs.ts';
import { TASK_INFO, perTokenLabels, type Task } from '../data/tasks.ts';
import { syntheticTensor } from '../runtime/probe.ts';
import type { Feeds } from '../runtime/tensors.ts';

/** Batch size and sequence length of a probe batch. */
export interface ProbeSize {
  B: number;
  T: number;
}

/** A label value of the task's kind for a row of `T` tokens (regression: `k` values). */
function labelValue(task: Task, T: number, label: InputSpec | undefined): unknown {
  switch (TASK_INFO[task].labelKind) {
    case 'token-class':
    case 'next-token':
      return new Array<number>(T).fill(0);
    case 'float': {
      const k = label?.dims?.[1];
      return typeof k === 'number' && k > 1 ? new Array<number>(k).fill(0) : 0;
    }
    default:
      return 0;
  }
}

/**
 * One probe batch of `size` for a model whose data inputs and labels `spec` describes.
 *
 * @param task - the loss head's task (what the labels look like)
 */
export function probeBatch(spec: CollateSpec & { task: Task }, size: ProbeSize): Feeds {
  const inputs = spec.inputs.map((i) => withRole(i, spec.inputs));
  const ids = inputs.find((i) => i.role === 'input_ids');
  const staticDim = (d: number | string | null | undefined) => (typeof d === 'number' && d > 0 ? d : undefined);
  // Without a token input, the labels' declared dims (they follow the model's first input).
  const label = ids ? undefined : inputs.find((i) => i.name === spec.labels[0]?.name);
  const B = staticDim(ids?.dims?.[0]) ?? staticDim(label?.dims?.[0]) ?? size.B;
  const T = staticDim(ids?.dims?.[1]) ?? (perTokenLabels(spec.task) ? staticDim(label?.dims?.[1]) : undefined) ?? size.T;
  const labelNames = new Set(spec.labels.map((l) => l.name));
  // Inputs collation makes from examples, and those it cannot (synthetic tensors below): data
  // inputs, and caches of a fixed length that only real values can fill.
  const shape = { B, T, lengths: new Array<number>(B).fill(T) };
  const fillable = (i: InputSpec) => (i.role !== 'past' && i.role !== 'static_cache') || fillInput(i, shape) !== undefined;
  const collated = inputs.filter((i) => labelNames.has(i.name) || (i.role !== 'data' && fillable(i)));
  const rows = Array.from({ length: B }, () => {
    const row: Record<string, unknown> = {};
    if (ids) row.input_ids = new Array<number>(T).fill(0);
    for (const l of spec.labels) row[l.field] = labelValue(spec.task, T, inputs.find((i) => i.name === l.name));
    return row;
  });
  const set = exampleSetFromRows(rows, 'probe batch');
  const feeds: Feeds = Object.fromEntries(set.batch(Array.from({ length: B }, (_, i) => i), { ...spec, inputs: collated }));
  // Symbolic dims of the other inputs: the batch and sequence symbols as above, others distinct.
  const symbols = new Map<string, number>();
  if (typeof ids?.dims?.[0] === 'string') symbols.set(ids.dims[0], B);
  if (typeof ids?.dims?.[1] === 'string') symbols.set(ids.dims[1], T);
  let next = size.T + 1;
  for (const input of inputs) {
    if (collated.includes(input)) continue;
    if (!input.dims) throw new PeanutError('E_GRAPH', `graph input '${input.name}' has no tensor type; pass a real batch to probe shapes`);
    const dims = input.dims.map((d, axis) => {
      if (typeof d === 'number' && d >= 0) return d;
      const sym = typeof d === 'string' && d ? d : axis === 0 ? '<batch>' : `${input.name}:${axis}`;
      if (!symbols.has(sym)) symbols.set(sym, axis === 0 ? B : next++);
      return symbols.get(sym)!;
    });
    feeds[input.name] = syntheticTensor(input.name, input.elemType, dims, (name) => (/mask/i.test(name) ? 1 : 0));
  }
  return feeds;
}

/** The batch and sequence sizes of a real batch (from its token input, else its first input). */
export function sizeOf(batch: Feeds, spec: CollateSpec): ProbeSize {
  const ids = spec.inputs.map((i) => withRole(i, spec.inputs)).find((i) => i.role === 'input_ids');
  const t = (ids && batch[ids.name]) ?? Object.values(batch)[0];
  return { B: Number(t?.dims[0] ?? 1), T: Number(t?.dims[1] ?? 1) };
}
