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
import { readBatches } from './batches.ts';
import { writeSafetensors } from './safetensors-files.ts';
import { externalDataFiles } from './model-data.ts';
import { nodeRuntime, type EpChoice } from './onnxruntime.ts';

export interface GradientsOptions {
  /** The data file holding the batch (.jsonl or .safetensors). */
  data: string;
  task: Task;
  /** The graph output holding the predictions (default: logits). */
  head?: string;
  /** Use only the first N examples. */
  batchSize?: number;
  ep?: EpChoice;
  /** Also write `tensors` to this safetensors file (atomically). */
  output?: string;
}

export interface GradientsResult {
  loss: number;
  /** `loss` and `<key>.grad` for every tweaker parameter, as `grad` writes them. */
  tensors: Map<string, SafeTensor>;
  /** Examples in the batch. */
  examples: number;
  params: string[];
}

/** Loss and gradients of an adapted model on the batch in `opts.data`. */
export async function computeGradients(model: OnnxModel, opts: GradientsOptions): Promise<GradientsResult> {
  const readOpts = { task: opts.task, ...(opts.batchSize ? { limit: opts.batchSize } : {}) };
  const readBatch = (m: OnnxModel, exclude?: ReadonlySet<string>, labels?: string) => readBatches(opts.data, m, { ...readOpts, ...(exclude ? { exclude } : {}), ...(labels ? { labels } : {}) })[0]!;
  const head = opts.head !== undefined ? { output: opts.head } : {};
  let gm: GradModel;
  try {
    gm = await buildGradModel(nodeRuntime, model, { task: opts.task, ...head });
  } catch (err) {
    // Synthetic probe batches cannot run this model (input dims tied to each other): probe
    // with the real batch instead; the graph is then built for this batch's shapes.
    if (!(err instanceof PeanutError && err.code === 'E_PROBE')) throw err;
    const real = readBatch(model);
    gm = await buildGradModel(nodeRuntime, model, { task: opts.task, ...head, batch: real, staticShapes: true });
  }
  const batch = readBatch(gm.model, new Set(gm.params), gm.labels);
  const files = externalDataFiles(gm.model);
  const r = await runGradModel(nodeRuntime, gm, batch, { ep: opts.ep ?? 'cpu', ...(files.length ? { externalData: files } : {}) });
  if (!Number.isFinite(r.loss)) throw new PeanutError('E_NON_FINITE', `the loss is ${r.loss}; check the labels and the --task`);
  const tensors = new Map<string, SafeTensor>([['loss', { dtype: 'F32', shape: [], data: Float32Array.of(r.loss) }]]);
  for (const p of gm.params) {
    const g = r.grads.get(p)!;
    tensors.set(`${p}.grad`, { dtype: 'F32', shape: g.dims, data: g.data });
  }
  if (opts.output) writeSafetensors(opts.output, tensors, { task: opts.task, format: 'peanut-onnx grad' });
  return { loss: r.loss, tensors, examples: batch[gm.labels]?.dims[0] ?? 0, params: gm.params };
}
