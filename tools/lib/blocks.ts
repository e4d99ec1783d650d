/**
 * Building blocks shared by the generators, each emitting the op pattern a TorchScript /
 * optimum export has for the corresponding PyTorch module. `scope` is the torch-style node
 * scope (`/bert/encoder/layer.0/attention/self/query`), `module` the dotted module path
 * (`bert.encoder.layer.0.attention.self.query`) that names parameters.
 */
import { float } from '../../src/onnx/attributes.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { FLOAT32_MIN, constI64, dim, reduceMean, reshape, scalarF32, shapeOf, transposed, unsqueeze, type ExportContext } from './export-context.ts';

// ---- linear layers ----------------------------------------------------------------------

/** `nn.Linear` on an N-d input: MatMul(x, W[in,out]) then Add(bias, ·) as torch orders it. */
export function linear(
  ctx: ExportContext,
  scope: string,
  module: string,
  x: string,
  inF: number,
  outF: number,
  opts: { bias?: boolean; std?: number; weight?: Float32Array } = {},
): string {
  const b = ctx.at(scope);
  const w = ctx.linearWeight(module, inF, outF, opts.std, opts.weight);
  const y = b.op('MatMul', [x, w]);
  if (opts.bias === false) return y;
  const bias = ctx.param(`${module}.bias`, [outF], ctx.biasInit());
  return b.op('Add', [bias, y]);
}

/**
 * `nn.Linear` on a 2-D input, which torch exports as Gemm(x, W[out,in], b, transB=1) with the
 * parameter's own name. Values are those `linear` would give the same module (transposed).
 */
export function gemmLinear(ctx: ExportContext, scope: string, module: string, x: string, inF: number, outF: number, output?: string): string {
  const b = ctx.at(scope);
  const w = ctx.param(`${module}.weight`, [outF, inF], transposed(ctx.normal(`${module}.weight`, inF * outF), inF, outF));
  const bias = ctx.param(`${module}.bias`, [outF], ctx.biasInit());
  return b.op('Gemm', [x, w, bias], { alpha: float(1), beta: float(1), transB: 1 }, output ? { outputs: [output] } : {});
}

/** A classification head on a 2-D input, as Gemm (torch's export) or MatMul + Add. */
export function headLinear(
  ctx: ExportContext,
  style: 'gemm' | 'matmul',
  scope: string,
  module: string,
  x: string,
  inF: number,
  outF: number,
  output?: string,
): string {
  if (style === 'gemm') return gemmLinear(ctx, scope, module, x, inF, outF, output);
  const b = ctx.at(scope);
  const w = ctx.linearWeight(module, inF, outF);
  const y = b.op('MatMul', [x, w]);
  const bias = ctx.param(`${module}.bias`, [outF], ctx.biasInit());
  return b.op('Add', [bias, y], {}, output ? { outputs: [output] } : {});
}

/**
 * GPT-2's Conv1D (weight [in, out] under its own name). `gemm` is torch's export of
 * `addmm(bias, x.view(-1, in), W).view(..., out)`: Reshape → Gemm → Reshape; `matmul` is
 * MatMul + Add, the form other exporters give.
 */
export function conv1d(
  ctx: ExportContext,
  style: 'gemm' | 'matmul',
  scope: string,
  module: string,
  x: string,
  inF: number,
  outF: number,
  std: number = ctx.initStd,
): string {
  const b = ctx.at(scope);
  if (style === 'matmul') {
    const w = ctx.param(`${module}.weight`, [inF, outF], { normal: std });
    const y = b.op('MatMul', [x, w]);
    return b.op('Add', [ctx.param(`${module}.bias`, [outF], ctx.biasInit()), y]);
  }
  const batch = dim(b, x, 0);
  const seq = dim(b, x, 1);
  const x2 = reshape(b, x, constI64(b, [-1, inF]));
  const w = ctx.param(`${module}.weight`, [inF, outF], { normal: std });
  const bias = ctx.param(`${module}.bias`, [outF], ctx.biasInit());
  const y2 = b.op('Gemm', [x2, w, bias], { alpha: float(1), beta: float(1) });
  return reshape(b, y2, shapeOf(b, [batch, seq, outF]));
}

// ---- normalisation ----------------------------------------------------------------------

export type LayerNormStyle = 'decomposed' | 'fused';

/**
 * `nn.LayerNorm` over the last axis: `fused` is the LayerNormalization op (opset ≥ 17),
 * `decomposed` the opset-14 pattern ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add.
 */
export function layerNorm(ctx: ExportContext, style: LayerNormStyle, scope: string, module: string, x: string, size: number, eps: number): string {
  const b = ctx.at(scope);
  const weight = ctx.param(`${module}.weight`, [size], 'ones');
  const bias = ctx.param(`${module}.bias`, [size], 'zeros');
  if (style === 'fused') {
    if (ctx.opset < 17) throw new Error(`LayerNormalization needs opset ≥ 17 (got ${ctx.opset})`);
    return b.op('LayerNormalization', [x, weight, bias], { axis: -1, epsilon: float(eps) });
  }
  const mean = reduceMean(ctx, b, x, [-1]);
  const centred = b.op('Sub', [x, mean]);
  const sq = b.op('Pow', [centred, scalarF32(b, 2)]);
  const variance = reduceMean(ctx, b, sq, [-1]);
  const std = b.op('Sqrt', [b.op('Add', [variance, scalarF32(b, eps)])]);
  const normed = b.op('Div', [centred, std]);
  return b.op('Add', [b.op('Mul', [normed, weight]), bias]);
}

/**
 * LLaMA's RMSNorm: Pow → ReduceMean → Add(eps) → Sqrt → Reciprocal (or Div 1/·) → Mul(x, ·) →
 * Mul(weight, ·).
 */
export function rmsNorm(ctx: ExportContext, scope: string, module: string, x: string, size: number, eps: number, inverse: 'reciprocal' | 'div' = 'reciprocal'): string {
  const b = ctx.at(scope);
  const weight = ctx.param(`${module}.weight`, [size], 'ones');
  const variance = reduceMean(ctx, b, b.op('Pow', [x, scalarF32(b, 2)]), [-1]);
  const root = b.op('Sqrt', [b.op('Add', [variance, scalarF32(b, eps)])]);
  const inv = inverse === 'reciprocal' ? b.op('Reciprocal', [root]) : b.op('Div', [scalarF32(b, 1), root]);
  return b.op('Mul', [weight, b.op('Mul', [x, inv])]);
}

// ---- activations ------------------------------------------------------------------------

export type GeluStyle = 'erf' | 'op';

/** Exact GELU: erf form Div/Erf/Add/Mul/Mul, or the Gelu op (opset ≥ 20). */
export function gelu(ctx: ExportContext, style: GeluStyle, scope: string, x: string): string {
  const b = ctx.at(scope);
  if (style === 'op') {
    if (ctx.opset < 20) throw new Error(`the Gelu op needs opset ≥ 20 (got ${ctx.opset})`);
    return b.op('Gelu', [x], { approximate: 'none' });
  }
  const erf = b.op('Erf', [b.op('Div', [x, scalarF32(b, Math.SQRT2)])]);
  const onePlus = b.op('Add', [erf, scalarF32(b, 1)]);
  return b.op('Mul', [b.op('Mul', [x, onePlus]), scalarF32(b, 0.5)]);
}

/** GPT-2's gelu_new (tanh approximation): Mul/Pow/Mul/Add/Mul/Tanh/Add/Mul. */
export function geluNew(ctx: ExportContext, scope: string, x: string): string {
  const b = ctx.at(scope);
  const half = b.op('Mul', [x, scalarF32(b, 0.5)]);
  const cube = b.op('Mul', [b.op('Pow', [x, scalarF32(b, 3)]), scalarF32(b, 0.044715)]);
  const inner = b.op('Mul', [b.op('Add', [x, cube]), scalarF32(b, Math.sqrt(2 / Math.PI))]);
  const t = b.op('Add', [b.op('Tanh', [inner]), scalarF32(b, 1)]);
  return b.op('Mul', [half, t]);
}

/** SiLU as exported: Sigmoid then Mul. */
export function silu(ctx: ExportContext, scope: string, x: string): string {
  const b = ctx.at(scope);
  return b.op('Mul', [x, b.op('Sigmoid', [x])]);
}

// ---- attention plumbing -----------------------------------------------------------------

/** `[B, S, H·D] → [B, S, H, D]` by the exporter's Shape/Gather/Unsqueeze/Concat/Reshape chain. */
export function splitHeads(ctx: ExportContext, scope: string, x: string, heads: number, headDim: number): string {
  const b = ctx.at(scope);
  return reshape(b, x, shapeOf(b, [dim(b, x, 0), dim(b, x, 1), heads, headDim]));
}

/** `[B, H, S, D] → [B, S, H·D]`: Transpose then Reshape. */
export function mergeHeads(ctx: ExportContext, scope: string, x: string, hidden: number): string {
  const b = ctx.at(scope);
  const t = b.op('Transpose', [x], { perm: [0, 2, 1, 3] });
  return reshape(b, t, shapeOf(b, [dim(b, t, 0), dim(b, t, 1), hidden]));
}

/**
 * HF's extended padding mask `(1 − mask[:, None, None, :]) · finfo.min`, [B, 1, 1, S]:
 * Unsqueeze/Unsqueeze/Cast/Sub/Mul.
 */
export function additivePaddingMask(ctx: ExportContext, scope: string, mask: string): string {
  const b = ctx.at(scope);
  const m4 = unsqueeze(b, unsqueeze(b, mask, [1]), [2]);
  const f = b.op('Cast', [m4], { to: DT.FLOAT });
  return b.op('Mul', [b.op('Sub', [scalarF32(b, 1), f]), scalarF32(b, FLOAT32_MIN)]);
}

/** Position ids `[1, S]` from `Range(0, S, 1)` on the sequence length of `ids`. */
export function rangePositionIds(ctx: ExportContext, scope: string, ids: string): string {
  const b = ctx.at(scope);
  const seq = dim(b, ids, 1);
  const range = b.op('Range', [constI64(b, [0], []), seq, constI64(b, [1], [])]);
  return unsqueeze(b, range, [0]);
}

/**
 * Encoder self-attention as BERT and ViT export it: query/key/value linears, heads by
 * Reshape/Transpose (key to [B, H, D, S]), MatMul, Div by √D, optional additive mask, Softmax,
 * context MatMul, merge heads. `scope`/`module` name the attention module (`…/attention/self`).
 */
export function encoderSelfAttention(ctx: ExportContext, scope: string, module: string, x: string, hidden: number, heads: number, mask?: string): string {
  const d = hidden / heads;
  const b = ctx.at(scope);
  const q = linear(ctx, `${scope}/query`, `${module}.query`, x, hidden, hidden);
  const k = linear(ctx, `${scope}/key`, `${module}.key`, x, hidden, hidden);
  const kHeads = splitHeads(ctx, scope, k, heads, d);
  const v = linear(ctx, `${scope}/value`, `${module}.value`, x, hidden, hidden);
  const vT = b.op('Transpose', [splitHeads(ctx, scope, v, heads, d)], { perm: [0, 2, 1, 3] });
  const qT = b.op('Transpose', [splitHeads(ctx, scope, q, heads, d)], { perm: [0, 2, 1, 3] });
  const kT = b.op('Transpose', [kHeads], { perm: [0, 2, 3, 1] });
  let scores = b.op('Div', [b.op('MatMul', [qT, kT]), scalarF32(b, Math.sqrt(d))]);
  if (mask) scores = b.op('Add', [scores, mask]);
  const probs = b.op('Softmax', [scores], { axis: -1 });
  return mergeHeads(ctx, scope, b.op('MatMul', [probs, vT]), hidden);
}
