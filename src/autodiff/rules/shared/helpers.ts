/**
 * Helpers that read the forward node a gradient rule is for: its inputs, its probed shapes and
 * dims as int64 tensors (constants where probing proved them static, `Shape` of a forward value
 * where not), zeros and reshapes like a forward value, the axes a Reduce* node reduces, a Split
 * whose sizes may be run-time values, and sliding-window geometry (Conv, pooling). Errors name
 * the node. Emitters that need only a builder and the opset are in ops.ts.
 *
 * Nothing here bakes a dynamic (null) axis into a constant.
 */
import type { GradContext, GradRule, StaticShape } from '../../rule.ts';
import { attrInts, attrInt, attrString } from '../../../onnx/attributes.ts';
import { PeanutError } from '../../../errors.ts';
import { concatInts, expandTo, needsOpset, normAxis, padConst, sliceConst, unsqueeze, zerosOfShape, type ReduceArg } from '../../../onnx/ops.ts';

export function isStatic(shape: StaticShape): shape is readonly number[] {
  return shape.every((d) => d !== null);
}

export function unsupported(ctx: GradContext, why: string): never {
  throw new PeanutError('E_UNSUPPORTED_OP', `cannot differentiate ${ctx.node.opType} node '${ctx.node.name}': ${why}`);
}

/** Whether optional input `i` is present. */
export function hasInput(ctx: GradContext, i: number): boolean {
  return i < ctx.inputCount && ctx.I(i) !== '';
}

/** Gradient of optional output `i`, or undefined where the node does not have that output. */
export function optionalGO(ctx: GradContext, i: number): string | undefined {
  return ctx.node.output[i] ? ctx.GO(i) : undefined;
}

const shapeCache = new WeakMap<object, Map<string, string>>();

/** Shape of forward value `name` as a 1-D int64 tensor: a constant when fully static. */
export function shapeOf(ctx: GradContext, name: string): string {
  const s = ctx.shape(name);
  if (isStatic(s)) return ctx.b.constInt64([...s]);
  let cache = shapeCache.get(ctx.b);
  if (!cache) shapeCache.set(ctx.b, (cache = new Map()));
  const hit = cache.get(name);
  if (hit) return hit;
  const out = ctx.b.op('Shape', [name]);
  cache.set(name, out);
  return out;
}

/** Dim `axis` of forward value `name` as an int64 tensor of shape [1]. */
export function dimOf(ctx: GradContext, name: string, axis: number): string {
  const d = ctx.shape(name)[axis];
  if (typeof d === 'number') return ctx.b.constInt64([d]);
  return ctx.b.op('Gather', [shapeOf(ctx, name), ctx.b.constInt64([axis])], { axis: 0 });
}

/** Dim `axis` of `name` as a piece for `concatInts`: the number where static, else `dimOf`. */
export function dimPiece(ctx: GradContext, name: string, axis: number): number | string {
  const d = ctx.shape(name)[axis];
  return typeof d === 'number' ? d : dimOf(ctx, name, axis);
}

/** Dims `axes` of `name` as a 1-D int64 tensor (constant when those dims are static). */
export function dimsOf(ctx: GradContext, name: string, axes: readonly number[]): string {
  const s = ctx.shape(name);
  const ds = axes.map((a) => s[a]);
  if (ds.every((d) => typeof d === 'number')) return ctx.b.constInt64(ds as number[]);
  return ctx.b.op('Gather', [shapeOf(ctx, name), ctx.b.constInt64([...axes])], { axis: 0 });
}

/** Zeros shaped and typed like forward value `name`. */
export function zerosLike(ctx: GradContext, name: string): string {
  return zerosOfShape(ctx, shapeOf(ctx, name), ctx.dtype(name), ctx.rank(name));
}

/** Reshape `x` to the shape of forward value `like`. */
export function reshapeLike(ctx: GradContext, x: string, like: string): string {
  return ctx.b.op('Reshape', [x, shapeOf(ctx, like)]);
}

/** The axes a forward Reduce* node reduces. */
export type ReduceAxes =
  | { kind: 'all' }
  | { kind: 'none' }
  | { kind: 'const'; axes: number[] }
  | { kind: 'dynamic'; name: string };

/**
 * Axes a forward Reduce* node reduces: the `axes` input where the node has one (ReduceSum ≥13,
 * others ≥18), else the attribute; empty axes mean all axes, or none with
 * `noop_with_empty_axes=1`. Constant axes come back normalised to non-negative.
 */
export function reduceAxes(ctx: GradContext): ReduceAxes {
  const rank = ctx.rank(ctx.I(0));
  const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
  let axes: number[] | undefined;
  if (hasInput(ctx, 1)) {
    axes = ctx.constInts(ctx.I(1));
    if (!axes) {
      const len = ctx.shape(ctx.I(1))[0];
      if (len === 0) return noop ? { kind: 'none' } : { kind: 'all' };
      return { kind: 'dynamic', name: ctx.I(1) };
    }
  } else {
    axes = attrInts(ctx.node, 'axes');
  }
  if (!axes || axes.length === 0) return noop ? { kind: 'none' } : { kind: 'all' };
  return { kind: 'const', axes: [...new Set(axes.map((a) => normAxis(a, rank)))].sort((a, b) => a - b) };
}

/**
 * Gradient of a Reduce* output brought back to the rank of the input (keepdims=0 → Unsqueeze),
 * not yet expanded.
 */
export function keepdimsGrad(ctx: GradContext, dY: string, axes: ReduceAxes): string {
  const keepdims = attrInt(ctx.node, 'keepdims', 1);
  if (keepdims === 1 || axes.kind === 'none') return dY;
  if (axes.kind === 'all') {
    const rank = ctx.rank(ctx.I(0));
    return rank === 0 ? dY : ctx.b.op('Reshape', [dY, ctx.b.constInt64(new Array<number>(rank).fill(1))]);
  }
  if (axes.kind === 'const') return unsqueeze(ctx, dY, axes.axes);
  return ctx.b.op('Unsqueeze', [dY, axes.name]);
}

/**
 * A Reduce* gradient with the reduced axes kept (`keepdimsGrad`) spread back over input 0's
 * shape. Where every reduced axis is static (from opset 8) the target is those dims with 1 on the
 * kept axes, which Expand fills from the gradient itself: no Shape(X), which would keep X alive
 * until the backward reaches this node only for its shape. Otherwise Expand to Shape(X).
 */
export function expandReduced(ctx: GradContext, dYk: string, reduced: readonly number[] | undefined): string {
  const x = ctx.I(0);
  const rank = ctx.rank(x);
  const shape = ctx.shape(x);
  if (ctx.opset >= 8 && reduced && reduced.every((a) => typeof shape[a] === 'number')) {
    const target = shape.map((d, i) => (reduced.includes(i) ? (d as number) : 1));
    return target.every((d) => d === 1) ? dYk : ctx.b.op('Expand', [dYk, ctx.b.constInt64(target)]);
  }
  return expandTo(ctx, dYk, shapeOf(ctx, x), rank);
}

/** The axes a Reduce* node reduces as a list, when known at build time (`rank`: input 0's). */
export function reducedAxisList(axes: ReduceAxes, rank: number): readonly number[] | undefined {
  if (axes.kind === 'all') return Array.from({ length: rank }, (_, i) => i);
  if (axes.kind === 'const') return axes.axes;
  if (axes.kind === 'none') return [];
  return undefined;
}

/** `ReduceAxes` as the argument of `reduce()`. */
export function reduceArg(axes: ReduceAxes): ReduceArg {
  switch (axes.kind) {
    case 'all':
      return 'all';
    case 'none':
      return [];
    case 'const':
      return axes.axes;
    case 'dynamic':
      return { name: axes.name };
  }
}

/**
 * Split `x` along `axis` into pieces of `sizes` (a 1-D int64 tensor name, or numbers): sizes as
 * an input from opset 13, the `split` attribute before (static sizes); run-time sizes before 13
 * become one Slice per piece (run-time starts and ends need opset 10).
 */
export function split(ctx: GradContext, x: string, axis: number, sizes: ReadonlyArray<number | string>): string[] {
  const n = sizes.length;
  const b = ctx.b;
  if (ctx.opset >= 13) return b.opN('Split', [x, concatInts(ctx, sizes)], { axis }, { outputs: n });
  if (sizes.every((v) => typeof v === 'number')) return b.opN('Split', [x], { axis, split: sizes as number[] }, { outputs: n });
  if (ctx.opset < 10) needsOpset(ctx, 10, `${ctx.node.opType} node '${ctx.node.name}': splitting its gradient at run-time sizes (Slice)`);
  const asTensor = (v: number | string) => (typeof v === 'number' ? b.constInt64([v]) : v);
  const parts: string[] = [];
  let start: number | string = 0;
  for (const size of sizes) {
    const end: number | string = typeof start === 'number' && typeof size === 'number' ? start + size : b.op('Add', [asTensor(start), asTensor(size)]);
    parts.push(b.op('Slice', [x, asTensor(start), asTensor(end), b.constInt64([axis])]));
    start = end;
  }
  return parts;
}

/**
 * `x` (of element type `dt` and rank `rank`) zero-padded before and after each of `axes` by
 * `before[i]` / `after[i]` (numbers, or int64 tensors of shape [1]; none negative): one Pad
 * (constant pads at any opset, run-time pads from opset 11), else Concats with zeros of run-time
 * shape along each padded axis.
 */
export function padZeros(ctx: GradContext, x: string, dt: number, rank: number, axes: readonly number[], before: ReadonlyArray<number | string>, after: ReadonlyArray<number | string>): string {
  const b = ctx.b;
  const all = [...before, ...after];
  if (all.every((a) => a === 0)) return x;
  const full = (amounts: ReadonlyArray<number | string>) => {
    const out: Array<number | string> = new Array<number | string>(rank).fill(0);
    axes.forEach((a, i) => (out[a] = amounts[i]!));
    return out;
  };
  if (all.every((a) => typeof a === 'number')) return padConst(ctx, x, [...full(before), ...full(after)] as number[]);
  if (ctx.opset >= 11) return b.op('Pad', [x, concatInts(ctx, [...full(before), ...full(after)])], { mode: 'constant' });
  let out = x;
  const zerosAlong = (axis: number, amount: number | string) => {
    const shape = b.op('Shape', [out]);
    const dims = Array.from({ length: rank }, (_, j) => (j === axis ? amount : b.op('Gather', [shape, b.constInt64([j])], { axis: 0 })));
    return zerosOfShape(ctx, concatInts(ctx, dims), dt, rank);
  };
  axes.forEach((a, i) => {
    const pieces = [...(before[i] === 0 ? [] : [zerosAlong(a, before[i]!)]), out, ...(after[i] === 0 ? [] : [zerosAlong(a, after[i]!)])];
    if (pieces.length > 1) out = b.op('Concat', pieces, { axis: a });
  });
  return out;
}

/** `x` zero-padded at the end of each of `axes` (see `padZeros`). */
export function padEnd(ctx: GradContext, x: string, dt: number, rank: number, axes: readonly number[], amounts: ReadonlyArray<number | string>): string {
  return padZeros(ctx, x, dt, rank, axes, axes.map(() => 0), amounts);
}

/** Geometry of a sliding-window op (Conv, pooling), with auto_pad resolved to explicit pads. */
export interface WindowAttrs {
  strides: number[];
  dilations: number[];
  /** begin…, end… */
  pads: number[];
  kernel: Array<number | null>;
}

/**
 * Strides, dilations and pads of a Conv/pool node over input 0; auto_pad SAME_* is resolved
 * from the static spatial dims (it cannot be with dynamic ones).
 */
export function windowAttrs(ctx: GradContext, kernel: Array<number | null>): WindowAttrs {
  const x = ctx.I(0);
  const nsp = ctx.rank(x) - 2;
  const ones = new Array<number>(nsp).fill(1);
  const strides = attrInts(ctx.node, 'strides') ?? ones;
  const dilations = attrInts(ctx.node, 'dilations') ?? ones;
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  let pads = attrInts(ctx.node, 'pads') ?? new Array<number>(2 * nsp).fill(0);
  if (autoPad === 'VALID') pads = new Array<number>(2 * nsp).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const sp = ctx.shape(x).slice(2);
    const begin: number[] = [];
    const end: number[] = [];
    for (let i = 0; i < nsp; i++) {
      const n = sp[i];
      const k = kernel[i];
      if (typeof n !== 'number' || typeof k !== 'number') unsupported(ctx, `auto_pad ${autoPad} with dynamic spatial dims`);
      const s = strides[i]!;
      const total = Math.max(0, (Math.ceil(n / s) - 1) * s + (k - 1) * dilations[i]! + 1 - n);
      const small = Math.floor(total / 2);
      begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      end.push(autoPad === 'SAME_UPPER' ? total - small : small);
    }
    pads = [...begin, ...end];
  }
  return { strides, dilations, pads, kernel };
}

/**
 * `dW` (a weight gradient whose spatial dims may exceed the kernel's) cut to the spatial dims of
 * forward weight `w`: a constant Slice where the kernel is static (always, in exported models),
 * a run-time one from opset 10.
 */
export function cropToKernel(ctx: GradContext, dW: string, w: string): string {
  const nsp = ctx.rank(w) - 2;
  const spatial = Array.from({ length: nsp }, (_, i) => i + 2);
  const k = ctx.shape(w).slice(2);
  const zeros = new Array<number>(nsp).fill(0);
  if (isStatic(k)) return sliceConst(ctx, dW, zeros, k, spatial);
  if (ctx.opset < 10) needsOpset(ctx, 10, `${ctx.node.opType} node '${ctx.node.name}': a weight gradient for a run-time kernel size (Slice)`);
  return ctx.b.op('Slice', [dW, ctx.b.constInt64(zeros), dimsOf(ctx, w, spatial), ctx.b.constInt64(spatial)]);
}

/**
 * The part of `full` (a ConvTranspose result computed without end cropping, spatial dims
 * `fullDims` where known) that lies over forward value `x`'s spatial extent: cut to X's size,
 * then zero-padded at the end where the forward windows never reached. Constant slices and pads
 * where both sizes are static; run-time ones (Slice inputs, opset 10) otherwise.
 */
export function fitSpatial(ctx: GradContext, full: string, x: string, fullDims: ReadonlyArray<number | null> = []): string {
  const b = ctx.b;
  const rank = ctx.rank(x);
  const nsp = rank - 2;
  const spatial = Array.from({ length: nsp }, (_, i) => i + 2);
  const xs = ctx.shape(x).slice(2);
  if (xs.every((d) => typeof d === 'number') && spatial.every((_, i) => typeof fullDims[i] === 'number')) {
    const want = xs as number[];
    const have = fullDims as number[];
    const cutAxes = spatial.filter((_, i) => have[i]! > want[i]!);
    const cut = cutAxes.length ? sliceConst(ctx, full, cutAxes.map(() => 0), cutAxes.map((a) => want[a - 2]!), cutAxes) : full;
    return padEnd(ctx, cut, ctx.dtype(x), rank, spatial, spatial.map((_, i) => Math.max(0, want[i]! - have[i]!)));
  }
  if (ctx.opset < 10) needsOpset(ctx, 10, `${ctx.node.opType} node '${ctx.node.name}': fitting its input gradient to run-time spatial sizes (Slice)`);
  const xDims = dimsOf(ctx, x, spatial);
  const cut = b.op('Slice', [full, b.constInt64(new Array<number>(nsp).fill(0)), xDims, b.constInt64(spatial)]);
  const missing = b.op('Sub', [xDims, b.op('Gather', [b.op('Shape', [cut]), b.constInt64(spatial)], { axis: 0 })]);
  const amounts = spatial.map((_, i) => b.op('Gather', [missing, b.constInt64([i])], { axis: 0 }));
  return padEnd(ctx, cut, ctx.dtype(x), rank, spatial, amounts);
}

/**
 * A rule for an elementwise op of one input: dX = dY · f'(X), where `local` emits f'(X) (it may
 * read the forward output `ctx.O(0)`). Nothing is emitted when no gradient is needed.
 */
export function elementwiseRule(opType: string, local: (ctx: GradContext, x: string, dt: number) => string): GradRule {
  return {
    opType,
    grad(ctx) {
      const dY = ctx.dY;
      const x = ctx.I(0);
      return [ctx.b.op('Mul', [dY, local(ctx, x, ctx.dtype(x))])];
    },
  };
}
