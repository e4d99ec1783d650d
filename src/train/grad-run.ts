/**
 * Running a gradient model once: feeds the batch, θ (from the adapted model unless given) and
 * returns the loss and every θ gradient as float32. Used by `peanut-onnx grad` and the tests.
 */
import { PeanutError } from '../errors.ts';
import { encodeModel } from '../onnx/model.ts';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor.ts';
import { feedInputs } from '../runtime/probe.ts';
import type { Runtime, SessionOptions } from '../runtime/session.ts';
import { f32Tensor, type Feeds, type HostTensor } from '../runtime/tensors.ts';
import type { GradModel } from './grad-model.ts';

export interface GradRunResult {
  loss: number;
  /** θ name -> gradient (float32, θ's shape). */
  grads: Map<string, { dims: number[]; data: Float32Array }>;
  prediction: HostTensor;
}

export interface GradRunOptions {
  /** θ values (default: those stored in the adapted model). */
  params?: ReadonlyMap<string, Float32Array>;
  ep?: string;
  /** External data files of the gradient model (the adapted model's), on platforms with files. */
  externalData?: SessionOptions['externalData'];
}

/**
 * Runs `gm` on one batch. `batch` holds the model's data inputs and the labels (under the label
 * inputs' names or their data fields: `labels`, `start_positions`, …); θ defaults to the values
 * stored in the adapted model.
 */
export async function runGradModel(runtime: Runtime, gm: GradModel, batch: Feeds, opts: GradRunOptions = {}): Promise<GradRunResult> {
  const session = await runtime.createSession(encodeModel(gm.model.proto), { ep: opts.ep ?? runtime.cpuEp, memPattern: false, ...(opts.externalData?.length ? { externalData: opts.externalData } : {}) });
  try {
    const feeds: Feeds = {};
    const paramSet = new Set(gm.params);
    for (const v of feedInputs(gm.model.proto)) {
      if (paramSet.has(v.name)) continue;
      const label = gm.labels.find((l) => l.name === v.name);
      const t = batch[v.name] ?? (label ? (batch[label.field] ?? (label.field === 'labels' ? batch.label : undefined)) : undefined);
      if (!t) throw new PeanutError('E_DATA', `the batch has no '${v.name}' (model inputs: ${feedInputs(gm.model.proto).filter((i) => !paramSet.has(i.name)).map((i) => i.name).join(', ')})`);
      feeds[v.name] = t;
    }
    for (const p of gm.params) {
      const init = gm.initialParams.get(p)!;
      feeds[p] = f32Tensor(opts.params?.get(p) ?? tensorToFloat32(init, gm.model.baseDir), tensorDims(init));
    }
    const out = await session.run(feeds);
    const grads = new Map<string, { dims: number[]; data: Float32Array }>();
    for (const p of gm.params) {
      const t = out[gm.grads.get(p)!]!;
      grads.set(p, { dims: [...t.dims], data: Float32Array.from(t.data as Float32Array) });
    }
    return { loss: (out[gm.loss]!.data as Float32Array)[0]!, grads, prediction: out[gm.prediction]! };
  } finally {
    await session.release();
  }
}
