/**
 * `peanut-onnx grad` on Node: one forward and backward pass of an adapted model on one batch
 * read from a data file (the loss and every tweaker gradient, nothing updated).
 */
import { PeanutError } from '../errors.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import type { OnnxModel } from '../onnx/model.ts';
import type { Task } from '../data/tasks.ts';
import { buildGradModel, type GradModel } from '../train/grad-model.ts';
import { runGradModel } from '../train/grad-run.ts';
import { headList } from '../train/plan.ts';
import { readBatches } from './batches.ts';
import { openExampleSet } from './data-files.ts';
import { writeSafetensors } from './safetensors-files.ts';
import { externalDataFiles } from './model-data.ts';
import { nodeRuntime, type EpChoice } from './onnxruntime.ts';

export interface GradientsOptions {
  /** The data file holding the batch (.jsonl or .safetensors). */
  data: string;
  task: Task;
  /** The graph output(s) holding the predictions: names, or one comma-separated string (default: the task's, e.g. logits). */
  head?: string | readonly string[];
  /** Use only the first N examples. */
  batchSize?: number;
  ep?: EpChoice;
  /** Also write `tensors` to this safetensors file (atomically). */
  output?: string;
}

export interface GradientsResult {
  loss: number;
  /** `loss` and `<key>.grad` for every tweaker parameter that reaches the loss, as `grad` writes them. */
  tensors: Map<string, SafeTensor>;
  /** Examples in the batch. */
  examples: number;
  params: string[];
  /** Tweaker parameters left out because they do not reach the loss, and one warning line per target. */
  dropped: string[];
  warnings: string[];
}

/** Loss and gradients of an adapted model on the batch in `opts.data`. */
export async function computeGradients(model: OnnxModel, opts: GradientsOptions): Promise<GradientsResult> {
  const readOpts = { task: opts.task, ...(opts.batchSize ? { limit: opts.batchSize } : {}) };
  const heads = headList(opts.head);
  const head = heads ? { heads } : {};
  let gm: GradModel;
  try {
    gm = await buildGradModel(nodeRuntime, model, { task: opts.task, ...head });
  } catch (err) {
    // Synthetic probe batches cannot run this model (input dims tied to each other): probe
    // with the real batch instead; the graph is then built for this batch's shapes.
    if (!(err instanceof PeanutError && err.code === 'E_PROBE')) throw err;
    const real = readBatches(opts.data, model, readOpts)[0]!;
    gm = await buildGradModel(nodeRuntime, model, { task: opts.task, ...head, batch: real, staticShapes: true });
  }
  // Every example is checked against the model before anything runs or is written.
  openExampleSet(opts.data).check({ inputs: gm.inputs, labels: gm.labels, task: opts.task, bounds: gm.bounds });
  const batch = readBatches(opts.data, gm.model, { ...readOpts, exclude: new Set(gm.params), labels: gm.labels })[0]!;
  const files = externalDataFiles(gm.model);
  const r = await runGradModel(nodeRuntime, gm, batch, { ep: opts.ep ?? 'cpu', ...(files.length ? { externalData: files } : {}) });
  if (!Number.isFinite(r.loss)) throw new PeanutError('E_NON_FINITE', `the loss is ${r.loss}; check the labels and the --task`);
  const tensors = new Map<string, SafeTensor>([['loss', { dtype: 'F32', shape: [], data: Float32Array.of(r.loss) }]]);
  for (const p of gm.params) {
    const g = r.grads.get(p)!;
    tensors.set(`${p}.grad`, { dtype: 'F32', shape: g.dims, data: g.data });
  }
  if (opts.output) writeSafetensors(opts.output, tensors, { task: opts.task, format: 'peanut-onnx grad' });
  const first = batch[gm.labels[0]!.name];
  return { loss: r.loss, tensors, examples: Number(first?.dims[0] ?? 0), params: gm.params, dropped: gm.dropped, warnings: gm.warnings };
}
