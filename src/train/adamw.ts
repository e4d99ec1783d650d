/**
 * The fused optimizer update, emitted as ONNX nodes into the training graph so that forward,
 * backward, gradient clipping and AdamW run in one `InferenceSession.run` per step.
 *
 * Semantics are PyTorch's `torch.optim.AdamW` (single-tensor path), step by step:
 *
 *   p ← p · (1 − lr·wd)                        decoupled weight decay
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   step_size = lr / (1 − β1^t)                 bias corrections, computed in float64 as Python does
 *   denom     = √v / √(1 − β2^t) + eps
 *   p ← p − step_size · m / denom
 *
 * Optional global-norm clipping follows `torch.nn.utils.clip_grad_norm_`: the norm over every
 * gradient, `coef = min(1, max_norm / (norm + 1e-6))`, every gradient scaled by `coef` before the
 * update. The norm (before clipping) is always an output, for the metrics log.
 *
 * The step count and every hyper-parameter are graph *inputs* (float64 scalars; the step int64),
 * so a learning-rate schedule, another weight decay or a clipping threshold needs no new graph.
 * A `max_grad_norm` of +Inf disables clipping exactly (coef = 1, and g·1 = g bit for bit).
 */
import type { GraphBuilder } from '../onnx/builder.ts';
import { makeValueInfo } from '../onnx/graph.ts';
import { DataType as DT } from '../onnx/dtype.ts';

/** Names of the scalar inputs that drive the update. */
export interface AdamWInputNames {
  /** int64 scalar: the 1-based number of this optimizer step (t in the bias corrections). */
  step: string;
  /** float64 scalars. */
  lr: string;
  beta1: string;
  beta2: string;
  eps: string;
  weightDecay: string;
  /** float64 scalar; +Inf = no clipping. Only read when the emitter is asked to clip. */
  maxGradNorm: string;
}

/** The graph-input names the training graph uses (also recorded in the manifest). */
export const ADAMW_INPUTS: AdamWInputNames = {
  step: 'step',
  lr: 'lr',
  beta1: 'beta1',
  beta2: 'beta2',
  eps: 'eps',
  weightDecay: 'weight_decay',
  maxGradNorm: 'max_grad_norm',
};

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


/**
 * Adds the scalar hyper-parameter inputs (`step` int64, the rest float64) to the graph.
 * Returns the names used.
 */
export function addAdamWInputs(b: GraphBuilder, names: AdamWInputNames = ADAMW_INPUTS, opts: AdamWEmitOptions = {}): AdamWInputNames {
  const g = b.graph;
  const add = (name: string, elemType: number) => {
    g.reserve(name);
    g.proto.input.push(makeValueInfo(name, elemType, []));
  };
  add(names.step, DT.INT64);
  for (const k of ['lr', 'beta1', 'beta2', 'eps', 'weightDecay'] as const) add(names[k], DT.DOUBLE);
  if (opts.clip ?? true) add(names.maxGradNorm, DT.DOUBLE);
  return names;
}

/**
 * Emits clipping + AdamW for every parameter. The caller decides which outputs become graph
 * outputs (see `AdamWResult`).
 */
export function emitAdamW(b: GraphBuilder, params: readonly AdamWParam[], inputs: AdamWInputNames, opts: AdamWEmitOptions = {}): AdamWResult {
  const clip = opts.clip ?? true;
  const one = b.constDouble([1]);

  // Scalar bookkeeping in float64, as PyTorch does it in Python floats.
  const t = b.op('Cast', [inputs.step], { to: DT.DOUBLE }, { name: 'step_f64' });
  const bc1 = b.op('Sub', [one, b.op('Pow', [inputs.beta1, t])], {}, { name: 'bias_correction1' });
  const bc2 = b.op('Sub', [one, b.op('Pow', [inputs.beta2, t])], {}, { name: 'bias_correction2' });
  const stepSize64 = b.op('Div', [inputs.lr, bc1], {}, { name: 'step_size' });
  const bc2Sqrt64 = b.op('Sqrt', [bc2], {}, { name: 'bias_correction2_sqrt' });
  const decay64 = b.op('Sub', [one, b.op('Mul', [inputs.lr, inputs.weightDecay])], {}, { name: 'decay' });
  const omb1_64 = b.op('Sub', [one, inputs.beta1]);
  const omb2_64 = b.op('Sub', [one, inputs.beta2]);

  // Global gradient norm: per-tensor sums of squares (in the gradient's type), accumulated in float64.
  const sq = params.map((p) => b.op('Cast', [b.op('ReduceSumSquare', [p.grad], { keepdims: 0 })], { to: DT.DOUBLE }));
  const norm64 = b.op('Sqrt', [sq.length === 1 ? sq[0]! : b.op('Sum', sq)], {}, { name: 'grad_norm' });
  const gradNorm = b.op('Cast', [norm64], { to: DT.FLOAT }, { name: 'grad_norm_f32' });
  let coef64: string | undefined;
  if (clip) {
    // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to at most 1.
    const raw = b.op('Div', [inputs.maxGradNorm, b.op('Add', [norm64, b.constDouble([1e-6])])]);
    coef64 = b.op('Min', [raw, one], {}, { name: 'clip_coef' });
  }

  // Scalars cast once per element type in use.
  const casts = new Map<number, Record<string, string>>();
  const scalarsFor = (dtype: number) => {
    let s = casts.get(dtype);
    if (!s) {
      const c = (x: string) => b.op('Cast', [x], { to: dtype });
      s = {
        b1: c(inputs.beta1),
        b2: c(inputs.beta2),
        omb1: c(omb1_64),
        omb2: c(omb2_64),
        eps: c(inputs.eps),
        stepSize: c(stepSize64),
        bc2Sqrt: c(bc2Sqrt64),
        decay: c(decay64),
        ...(coef64 ? { coef: c(coef64) } : {}),
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
