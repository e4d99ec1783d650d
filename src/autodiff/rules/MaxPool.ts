/**
 * MaxPool: each output's gradient goes to the input element it selected. The selection comes
 * from MaxPool's Indices output (flat row-major indices over the whole of X), recomputed by a
 * second MaxPool with the same attributes when the node does not output it, or outputs it
 * column-major (storage_order=1); then dX is dY added into zeros at those indices:
 *
 * - opset ≥ 16: ScatterElements(zeros[Size(X)], indices, dY, reduction='add').
 * - opset 9–15 (no scatter-add): when windows overlap, one element can be selected by several
 *   outputs. Outputs o and o′ share no element when their windows are disjoint, i.e. when on some
 *   spatial axis |oᵢ − o′ᵢ| ≥ mᵢ = ⌈((kᵢ − 1)·dᵢ + 1) / sᵢ⌉. So outputs are put in G = Π mᵢ groups
 *   by g(o) = Σᵢ (oᵢ mod mᵢ)·Π_{j>i} mⱼ; within a group every selected index is distinct, and
 *   one plain scatter (ScatterElements, or Scatter at 9 and 10) writes dY at g·Size(X) + index
 *   into zeros[G·Size(X)], which is then summed over the G rows. Non-overlapping windows have
 *   G = 1. g is a constant for static output dims, else built with Range and Mod (opset 11).
 * - before opset 9 there is no scatter (and no Indices output before 8): for each kernel offset
 *   κ (row-major), the window elements at offset κ are sampled from X padded with −∞
 *   (Pad, Slice, Reshape, Gather: Sκ[o] = Xpad[o·s + κ]), the first offset whose element equals
 *   Y takes the gradient (MaxPool's own choice among ties), and dY·[taken] is put back at
 *   o·s + κ by the inverse reshapes and pads; the K placements are summed and the padding cut.
 *   Static spatial dims are needed there (the old Slice and Pad take constants).
 * ceil_mode, dilations, pads and auto_pad need nothing more: the indices account for them.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrInt, attrInts, attrString, float } from '../../onnx/attributes.ts';
import { equalFloat, inFloat32, needsOpset, padConst, reduce, scatterElements, sliceConst, unsqueeze, zerosOfShape } from '../../onnx/ops.ts';
import { dimOf, isStatic, shapeOf, unsupported, windowAttrs } from './shared/helpers.ts';

export const maxPoolGrad: GradRule = {
  opType: 'MaxPool',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    if (ctx.opset < 9) return [bySampling(ctx, dY)];
    const b = ctx.b;
    const x = ctx.I(0);
    const dt = ctx.dtype(x);
    const kernel = attrInts(ctx.node, 'kernel_shape') ?? unsupported(ctx, 'no kernel_shape');
    const strides = attrInts(ctx.node, 'strides') ?? kernel.map(() => 1);
    const dilations = attrInts(ctx.node, 'dilations') ?? kernel.map(() => 1);
    const groups = kernel.map((k, i) => Math.ceil(((k - 1) * dilations[i]! + 1) / strides[i]!));
    const G = groups.reduce((p, m) => p * m, 1);

    const rowMajor = attrInt(ctx.node, 'storage_order', 0) === 0;
    let indices = rowMajor ? ctx.node.output[1] || undefined : undefined;
    if (!indices) {
      const attrs = {
        auto_pad: attrString(ctx.node, 'auto_pad'),
        ceil_mode: attrInt(ctx.node, 'ceil_mode'),
        dilations: attrInts(ctx.node, 'dilations'),
        kernel_shape: kernel,
        pads: attrInts(ctx.node, 'pads'),
        strides: attrInts(ctx.node, 'strides'),
      };
      indices = b.opN('MaxPool', [x], attrs, { outputs: 2 })[1]!;
    }
    const size = b.op('Size', [x]);
    const flatDy = b.op('Reshape', [dY, b.constInt64([-1])]);
    if (G === 1 || ctx.opset >= 16) {
      const flatIdx = b.op('Reshape', [indices, b.constInt64([-1])]);
      const flatShape = b.op('Reshape', [size, b.constInt64([1])]);
      const scattered = inFloat32(ctx, dt, [flatDy], ([u], ct) =>
        G === 1 ? scatterElements(ctx, zerosOfShape(ctx, flatShape, ct, 1), flatIdx, u!, 0) : b.op('ScatterElements', [zerosOfShape(ctx, flatShape, ct, 1), flatIdx, u!], { axis: 0, reduction: 'add' }),
      );
      return [b.op('Reshape', [scattered, shapeOf(ctx, x)])];
    }
    const key = groupKey(ctx, groups); // [1, 1, O…] int64
    const target = b.op('Reshape', [b.op('Add', [b.op('Mul', [key, size]), indices]), b.constInt64([-1])]);
    const rows = b.op('Mul', [size, b.constInt64([G], [])]);
    const scattered = inFloat32(ctx, dt, [flatDy], ([u], ct) => scatterElements(ctx, zerosOfShape(ctx, b.op('Reshape', [rows, b.constInt64([1])]), ct, 1), target, u!, 0));
    const summed = reduce(ctx, 'ReduceSum', b.op('Reshape', [scattered, b.constInt64([G, -1])]), [0], 0);
    return [b.op('Reshape', [summed, shapeOf(ctx, x)])];
  },
};

/** g(o) = Σᵢ (oᵢ mod mᵢ)·Π_{j>i} mⱼ over Y's spatial coordinates, as int64 [1, 1, O…]. */
function groupKey(ctx: GradContext, groups: readonly number[]): string {
  const b = ctx.b;
  const y = ctx.O(0);
  const os = ctx.shape(y).slice(2);
  const nsp = os.length;
  const weight = (i: number) => groups.slice(i + 1).reduce((p, m) => p * m, 1);
  if (os.every((o) => typeof o === 'number')) {
    const dims = os as number[];
    const total = dims.reduce((p, o) => p * o, 1);
    const keys = Array.from({ length: total }, (_, flat) => {
      let rest = flat;
      let g = 0;
      for (let i = nsp - 1; i >= 0; i--) {
        const oi = rest % dims[i]!;
        rest = Math.floor(rest / dims[i]!);
        g += (oi % groups[i]!) * weight(i);
      }
      return g;
    });
    return b.constInt64(keys, [1, 1, ...dims]);
  }
  if (ctx.opset < 11) needsOpset(ctx, 11, `MaxPool node '${ctx.node.name}': the gradient of overlapping windows with run-time output sizes (Range)`);
  let key: string | undefined;
  for (let i = 0; i < nsp; i++) {
    const len = b.op('Reshape', [dimOf(ctx, y, i + 2), b.constInt64([], [0])]);
    const range = b.op('Range', [b.constInt64([0], []), len, b.constInt64([1], [])]);
    const shape = Array.from({ length: nsp + 2 }, (_, j) => (j === i + 2 ? -1 : 1));
    const term = b.op('Mul', [b.op('Mod', [b.op('Reshape', [range, b.constInt64(shape)]), b.constInt64([groups[i]!], [])]), b.constInt64([weight(i)], [])]);
    key = key ? b.op('Add', [key, term]) : term;
  }
  return key!;
}

/**
 * The gradient of a MaxPool node without a scatter (opsets 7 and 8): see the module comment.
 * MaxPool there has no dilations or ceil_mode.
 */
function bySampling(ctx: GradContext, dY: string): string {
  const b = ctx.b;
  const x = ctx.I(0);
  const y = ctx.O(0);
  const dt = ctx.dtype(x);
  const rank = ctx.rank(x);
  const nsp = rank - 2;
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? unsupported(ctx, 'no kernel_shape');
  const w = windowAttrs(ctx, kernel);
  const xs0 = ctx.shape(x).slice(2);
  const os0 = ctx.shape(y).slice(2);
  if (!isStatic(xs0) || !isStatic(os0)) return needsOpset(ctx, 9, `MaxPool node '${ctx.node.name}': its gradient with dynamic spatial dims (a scatter)`);
  const xs: number[] = [...xs0];
  const os: number[] = [...os0];
  const sp = Array.from({ length: nsp }, (_, i) => i);
  // Padded lengths: begin pads, and enough at the end for every offset's strided sample.
  const endPad = sp.map((i) => Math.max(w.pads[i + nsp]!, kernel[i]! - 1 + os[i]! * w.strides[i]! - xs[i]! - w.pads[i]!));
  const padded = sp.map((i) => xs[i]! + w.pads[i]! + endPad[i]!);
  const lead = [0, 0];
  const xp = b.op('Pad', [x], { mode: 'constant', pads: [...lead, ...w.pads.slice(0, nsp), ...lead, ...endPad], value: float(-3.4e38) });
  const offsets: number[][] = [[]];
  for (const k of kernel) offsets.splice(0, offsets.length, ...offsets.flatMap((o) => Array.from({ length: k }, (_, j) => [...o, j])));
  const placed: string[] = [];
  let seen: string | undefined;
  for (const off of offsets) {
    // Sκ[o] = Xpad[o·s + κ]: slice each axis from κ over O·s, split it into [O, s], keep index 0.
    let sample = xp;
    sp.forEach((i) => {
      const axis = 2 + i;
      sample = sliceConst(ctx, sample, [off[i]!], [off[i]! + os[i]! * w.strides[i]!], [axis]);
      const dims = [...lead, ...os.slice(0, i), os[i]!, w.strides[i]!, ...padded.slice(i + 1)];
      sample = b.op('Gather', [b.op('Reshape', [sample, b.constInt64(dims)]), b.constInt64([0], [])], { axis: axis + 1 });
    });
    const hit = equalFloat(ctx, sample, y);
    const taken = seen ? b.op('And', [hit, b.op('Not', [seen])]) : hit;
    seen = seen ? b.op('Or', [seen, hit]) : hit;
    // Back to Xpad's layout: each output spread over s positions (value first), shifted by κ.
    let g = b.op('Mul', [dY, b.op('Cast', [taken], { to: dt })]);
    for (let i = nsp - 1; i >= 0; i--) {
      const axis = 2 + i;
      const spread = padConst(ctx, unsqueeze(ctx, g, [axis + 1]), Array.from({ length: 2 * (rank + 1) }, (_, j) => (j === rank + 1 + axis + 1 ? w.strides[i]! - 1 : 0)));
      const dims = [...lead, ...os.slice(0, i), os[i]! * w.strides[i]!, ...padded.slice(i + 1)];
      g = b.op('Reshape', [spread, b.constInt64(dims)]);
      const pads = new Array<number>(2 * rank).fill(0);
      pads[axis] = off[i]!;
      pads[rank + axis] = padded[i]! - off[i]! - os[i]! * w.strides[i]!;
      g = padConst(ctx, g, pads);
    }
    placed.push(g);
  }
  const total = placed.length === 1 ? placed[0]! : b.op('Sum', placed);
  return sliceConst(ctx, total, sp.map((i) => w.pads[i]!), sp.map((i) => w.pads[i]! + xs[i]!), sp.map((i) => 2 + i));
}
