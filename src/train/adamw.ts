/**
 * The fused optimizer update, emitted as ONNX nodes into the training graph so that forward,
 * backward, gradient clipping and AdamW run in one `InferenceSession.run` per step.
 *
 * Semantics are PyTorch's `torch.optim.AdamW` (single-tensor path), step by step:
 *
 *   p ← p · (1 − lr·wd)                        decoupled weight decay
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   step_size = lr / (1 − β1^t)                 bias corrections
 *   denom     = √v / √(1 − β2^t) + eps
 *   p ← p − step_size · m / denom
 *
 * Optional global-norm clipping follows `torch.nn.utils.clip_grad_norm_`: the norm over every
 * gradient, `coef = min(1, max_norm / (norm + 1e-6))`, every gradient scaled by `coef` before the
 * update. The norm (before clipping) is always an output, for the metrics log.
 *
 * The graph holds no float64 value (runtimes without double kernels, such as ONNX Runtime's
 * WebGPU build, run it as it is). The per-run and per-step scalars (1 − β1, 1 − lr·wd, the bias
 * corrections, …) are computed in JavaScript in float64 (`adamWScalarFeeds`), as PyTorch computes
 * them in Python floats, and fed as float32 scalar inputs: the same rounding PyTorch applies when
 * its float32 kernels take those Python scalars. The gradient norm and the clipping coefficient
 * are float32 tensors, as in `clip_grad_norm_`. Because every scalar is an input, a learning-rate
 * schedule, another weight decay or a clipping threshold needs no new graph. A `max_grad_norm`
 * of +Inf disables clipping exactly (coef = 1, and g·1 = g bit for bit).
 */
import type { GraphBuilder } from '../onnx/builder.ts';
import { makeValueInfo } from '../onnx/graph.ts';
import { DataType as DT } from '../onnx/dtype.ts';

/** Names of the float32 scalar inputs that drive the update (values from `adamWScalarFeeds`). */
export interface AdamWInputNames {
  /** lr / (1 − β1^t), t the 1-based number of this optimizer step. */
  stepSize: string;
  /** √(1 − β2^t). */
  biasCorrection2Sqrt: string;
  /** 1 − lr·weight_decay. */
  decay: string;
  beta1: string;
  /** 1 − β1. */
  oneMinusBeta1: string;
  beta2: string;
  /** 1 − β2. */
  oneMinusBeta2: string;
  eps: string;
  /** +Inf = no clipping. Only an input when the emitter is asked to clip. */
  maxGradNorm: string;
}

/** The graph-input names the training graph uses (also recorded in the manifest). */
export const ADAMW_INPUTS: AdamWInputNames = {
  stepSize: 'step_size',
  biasCorrection2Sqrt: 'bias_correction2_sqrt',
  decay: 'decay',
  beta1: 'beta1',
  oneMinusBeta1: 'one_minus_beta1',
  beta2: 'beta2',
  oneMinusBeta2: 'one_minus_beta2',
  eps: 'eps',
  maxGradNorm: 'max_grad_norm',
};

/** The hyper-parameters of one optimizer step, as plain numbers. */
export interface AdamWStepHyper {
  /** Learning rate of this step (after the schedule). */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clipping threshold; +Inf (or null) = no clipping. */
  maxGradNorm: number | null;
}

/**
 * The scalar inputs for optimizer step `step` (1-based), by graph-input name, each a float32
 * scalar's data (a one-element `Float32Array`; feed it with dims `[]`). Computed in float64 as
 * PyTorch computes them in Python, then rounded to nearest float32, the rounding PyTorch's
 * float32 kernels apply to a Python scalar.
 *
 * @param names - the graph's input names (the manifest's `train.inputs.hyperparameters`).
 * @param h - this step's hyper-parameters.
 * @param step - number of this optimizer step, 1 for the first.
 */
export function adamWScalarFeeds(names: AdamWInputNames, h: AdamWStepHyper, step: number): Record<string, Float32Array> {
  const values: Record<keyof AdamWInputNames, number> = {
    stepSize: h.lr / (1 - h.beta1 ** step),
    biasCorrection2Sqrt: Math.sqrt(1 - h.beta2 ** step),
    decay: 1 - h.lr * h.weightDecay,
    beta1: h.beta1,
    oneMinusBeta1: 1 - h.beta1,
    beta2: h.beta2,
    oneMinusBeta2: 1 - h.beta2,
    eps: h.eps,
    maxGradNorm: h.maxGradNorm ?? Infinity,
  };
  return Object.fromEntries((Object.keys(values) as Array<keyof AdamWInputNames>).map((k) => [names[k], Float32Array.of(values[k])]));
}

/** One trainable tensor: its current value, gradient and moments (all value names in the graph). */
export interface AdamWParam {
  param: string;
  grad: string;
  m: string;
  v: string;
  /** ONNX element type of param/grad/moments (default float32). */
  dtype?: number;
}

export interface AdamWResult {
  /** param name → name of its updated value. */
  params: Map<string, string>;
  m: Map<string, string>;
  v: Map<string, string>;
  /** float32 scalar: global L2 norm of the gradients before clipping. */
  gradNorm: string;
}

export interface AdamWEmitOptions {
  /** Emit global-norm clipping driven by the `maxGradNorm` input (default true). */
  clip?: boolean;
}


/** Adds the float32 scalar inputs of the update to the graph. Returns the names used. */
export function addAdamWInputs(b: GraphBuilder, names: AdamWInputNames = ADAMW_INPUTS, opts: AdamWEmitOptions = {}): AdamWInputNames {
  const g = b.graph;
  const keys = (Object.keys(names) as Array<keyof AdamWInputNames>).filter((k) => k !== 'maxGradNorm' || (opts.clip ?? true));
  for (const k of keys) {
    g.reserve(names[k]);
    g.proto.input.push(makeValueInfo(names[k], DT.FLOAT, []));
  }
  return names;
}

/**
 * Emits clipping + AdamW for every parameter. The caller decides which outputs become graph
 * outputs (see `AdamWResult`).
 */
export function emitAdamW(b: GraphBuilder, params: readonly AdamWParam[], inputs: AdamWInputNames, opts: AdamWEmitOptions = {}): AdamWResult {
  const clip = opts.clip ?? true;
  const toFloat = (x: string) => b.op('Cast', [x], { to: DT.FLOAT });

  // Global gradient norm in float32, as clip_grad_norm_ computes it: per-tensor sums of squares
  // (in the gradient's type), summed.
  const sq = params.map((p) => {
    const s = b.op('ReduceSumSquare', [p.grad], { keepdims: 0 });
    return (p.dtype ?? DT.FLOAT) === DT.FLOAT ? s : toFloat(s);
  });
  const gradNorm = b.op('Sqrt', [sq.length === 1 ? sq[0]! : b.op('Sum', sq)], {}, { name: 'grad_norm' });
  let coef: string | undefined;
  if (clip) {
    // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to at most 1.
    const raw = b.op('Div', [inputs.maxGradNorm, b.op('Add', [gradNorm, b.scalar(1e-6)])]);
    coef = b.op('Min', [raw, b.scalar(1)], {}, { name: 'clip_coef' });
  }

  // Scalars cast once per element type in use (float32 parameters use the inputs as they are).
  const casts = new Map<number, Record<string, string>>();
  const scalarsFor = (dtype: number) => {
    let s = casts.get(dtype);
    if (!s) {
      const c = (x: string) => (dtype === DT.FLOAT ? x : b.op('Cast', [x], { to: dtype }));
      s = {
        b1: c(inputs.beta1),
        b2: c(inputs.beta2),
        omb1: c(inputs.oneMinusBeta1),
        omb2: c(inputs.oneMinusBeta2),
        eps: c(inputs.eps),
        stepSize: c(inputs.stepSize),
        bc2Sqrt: c(inputs.biasCorrection2Sqrt),
        decay: c(inputs.decay),
        ...(coef ? { coef: c(coef) } : {}),
      };
      casts.set(dtype, s);
    }
    return s;
  };

  const out: AdamWResult = { params: new Map(), m: new Map(), v: new Map(), gradNorm };
  for (const p of params) {
    const s = scalarsFor(p.dtype ?? DT.FLOAT);
    const g = s.coef ? b.op('Mul', [p.grad, s.coef]) : p.grad;
    const decayed = b.op('Mul', [p.param, s.decay!]);
    const m1 = b.op('Add', [b.op('Mul', [p.m, s.b1!]), b.op('Mul', [g, s.omb1!])]);
    const v1 = b.op('Add', [b.op('Mul', [p.v, s.b2!]), b.op('Mul', [b.op('Mul', [g, g]), s.omb2!])]);
    const denom = b.op('Add', [b.op('Div', [b.op('Sqrt', [v1]), s.bc2Sqrt!]), s.eps!]);
    const p1 = b.op('Sub', [decayed, b.op('Mul', [b.op('Div', [m1, denom]), s.stepSize!])]);
    out.params.set(p.param, p1);
    out.m.set(p.param, m1);
    out.v.set(p.param, v1);
  }
  return out;
}
