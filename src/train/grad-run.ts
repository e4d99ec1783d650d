/**
 * Running a gradient model once: feeds the batch, θ (from the adapted model unless given) and
 * returns the loss and every θ gradient as float32. Used by `peanut-onnx grad` and the tests.
 */
import { PeanutError } from '../errors.ts';
import { encodeModel } from '../onnx/model.ts';
import { externalDataFiles } from '../node/model-files.ts';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor.ts';
import { createSession, ort, type EpChoice } from '../runtime/session.ts';
import type { SafeTensor } from '../formats/safetensors.ts';
import type { GradModel } from './grad-model.ts';
import { feedInputs, type Feeds } from '../runtime/probe.ts';

/** An ORT tensor from a safetensors tensor (F32, F64, I64, I32, BOOL/U8). */
export function ortFromSafe(name: string, t: SafeTensor): ort.Tensor {
  switch (t.dtype) {
    case 'F32':
      return new ort.Tensor('float32', t.data as Float32Array, t.shape);
    case 'F64':
      return new ort.Tensor('float64', t.data as Float64Array, t.shape);
    case 'I64':
      return new ort.Tensor('int64', t.data as BigInt64Array, t.shape);
    case 'I32':
      return new ort.Tensor('int32', t.data as Int32Array, t.shape);
    case 'BOOL':
      return new ort.Tensor('bool', t.data as Uint8Array, t.shape);
    case 'U8':
      return new ort.Tensor('uint8', t.data as Uint8Array, t.shape);
    default:
      throw new PeanutError('E_DTYPE', `data tensor '${name}' has unsupported dtype ${t.dtype}`);
  }
}

/** ORT feeds from safetensors tensors. */
export function feedsFromSafe(tensors: ReadonlyMap<string, SafeTensor>): Feeds {
  const out: Feeds = {};
  for (const [k, v] of tensors) out[k] = ortFromSafe(k, v);
  return out;
}

export interface GradRunResult {
  loss: number;
  /** θ name -> gradient (float32, θ's shape). */
  grads: Map<string, { dims: number[]; data: Float32Array }>;
  prediction: ort.Tensor;
}

/**
 * Runs `gm` on one batch. `batch` holds the model's data inputs and the labels (`labels` or the
 * gradient model's labels name); θ defaults to the values stored in the adapted model.
 */
export async function runGradModel(gm: GradModel, batch: Feeds, opts: { params?: ReadonlyMap<string, Float32Array>; ep?: EpChoice } = {}): Promise<GradRunResult> {
  const files = externalDataFiles(gm.model);
  const { session } = await createSession(encodeModel(gm.model.proto), { ep: opts.ep ?? 'cpu', memPattern: false, ...(files.length ? { externalData: files } : {}) });
  try {
    const feeds: Feeds = {};
    const paramSet = new Set(gm.params);
    for (const v of feedInputs(gm.model.proto)) {
      if (paramSet.has(v.name)) continue;
      const t = batch[v.name] ?? (v.name === gm.labels ? (batch.labels ?? batch.label) : undefined);
      if (!t) throw new PeanutError('E_DATA', `the batch has no '${v.name}' (model inputs: ${feedInputs(gm.model.proto).filter((i) => !paramSet.has(i.name)).map((i) => i.name).join(', ')})`);
      feeds[v.name] = t;
    }
    for (const p of gm.params) {
      const init = gm.initialParams.get(p)!;
      const values = opts.params?.get(p) ?? tensorToFloat32(init, gm.model.baseDir);
      feeds[p] = new ort.Tensor('float32', values, tensorDims(init));
    }
    const out = await session.run(feeds);
    const lossT = out[gm.loss] as ort.Tensor;
    const grads = new Map<string, { dims: number[]; data: Float32Array }>();
    for (const p of gm.params) {
      const t = out[gm.grads.get(p)!] as ort.Tensor;
      grads.set(p, { dims: t.dims.map(Number), data: Float32Array.from(t.data as Float32Array) });
    }
    return { loss: (lossT.data as Float32Array)[0]!, grads, prediction: out[gm.prediction] as ort.Tensor };
  } finally {
    await session.release();
  }
}
