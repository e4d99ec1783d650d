/**
 * Rewrites a gradient-check case written for a recent opset into the same computation at an older
 * opset, following the ONNX operator changelog: inputs that were attributes before (the axes of
 * ReduceSum/Squeeze/Unsqueeze before 13 and of the other reductions before 18, Split's sizes
 * before 13, Slice's starts/ends/axes before 10, Pad's pads and value before 11, Clip's bounds
 * before 11, TopK's k before 10) become attributes again; negative axes become non-negative
 * before 11; and a case that uses something the older opset does not have (a run-time axes
 * input, Slice steps, numpy broadcasting of Max/Min/Mean/Sum before 8, an attribute added later)
 * comes back as a string saying why it cannot be rewritten.
 */
import type { AttrValue } from '../../src/onnx/attributes.ts';
import type { GradCheckCase, GradCheckInput } from './gradcheck.ts';

/** Where the axes of each reduction became an input. */
const REDUCE_AXES_INPUT: Record<string, number> = {
  ReduceSum: 13, ReduceMean: 18, ReduceMax: 18, ReduceMin: 18, ReduceProd: 18, ReduceL1: 18, ReduceL2: 18,
  ReduceLogSum: 18, ReduceLogSumExp: 18, ReduceSumSquare: 18,
};

/** Attributes added after an op's first version: attribute -> opset it appeared in. */
const LATER_ATTRS: Record<string, Record<string, number>> = {
  MaxPool: { storage_order: 8, ceil_mode: 10, dilations: 10 },
  AveragePool: { count_include_pad: 7, ceil_mode: 10, dilations: 19 },
  DepthToSpace: { mode: 11 },
  GatherND: { batch_dims: 12 },
  ScatterND: { reduction: 16 },
  ScatterElements: { reduction: 16 },
  ReduceSum: { noop_with_empty_axes: 13 },
  ReduceMean: { noop_with_empty_axes: 18 },
  ReduceMax: { noop_with_empty_axes: 18 },
  ReduceMin: { noop_with_empty_axes: 18 },
  ReduceL2: { noop_with_empty_axes: 18 },
  ReduceProd: { noop_with_empty_axes: 18 },
  Split: { num_outputs: 18 },
  BatchNormalization: { training_mode: 14 },
  TopK: { largest: 11, sorted: 11 },
  CumSum: {},
  LeakyRelu: {},
};

/** Ops whose variadic inputs broadcast (numpy style) only from opset 8. */
const VARIADIC = new Set(['Max', 'Min', 'Mean', 'Sum']);

const isConstInts = (i: GradCheckInput | undefined) => !!i && i.constant === true && i.type === 'int64' && Array.isArray(i.values);
const constInts = (i: GradCheckInput) => [...(i.values as readonly number[])];

/**
 * `c` rewritten for `opset`, or the reason it cannot be. `c` itself is not changed.
 */
export function atOpset(c: GradCheckCase, opset: number): GradCheckCase | string {
  const attrs: Record<string, AttrValue | undefined> = { ...(c.attrs ?? {}) };
  let inputs = c.inputs.map((i) => ({ ...i }));
  const rank0 = inputs[0]?.dims.length ?? 0;
  const later = LATER_ATTRS[c.op] ?? {};
  for (const [name, since] of Object.entries(later)) if (attrs[name] !== undefined && opset < since) return `attribute ${name} exists from opset ${since}`;

  // Inputs that were attributes before.
  const toAttr = (at: number, attr: string): string | undefined => {
    const inp = inputs[at];
    if (!inp || inp.name === '') return undefined;
    if (!isConstInts(inp)) return `input ${at} is a run-time value (an attribute before opset ${opset + 1})`;
    attrs[attr] = attr === 'k' ? constInts(inp)[0]! : constInts(inp);
    inp.name = '';
    return undefined;
  };
  const reduceSince = REDUCE_AXES_INPUT[c.op];
  let why: string | undefined;
  if (reduceSince !== undefined && opset < reduceSince) why = toAttr(1, 'axes');
  if ((c.op === 'Squeeze' || c.op === 'Unsqueeze') && opset < 13) why = toAttr(1, 'axes');
  if (c.op === 'Split' && opset < 13) {
    why = toAttr(1, 'split');
    if (!why && attrs['num_outputs'] !== undefined) return 'num_outputs exists from opset 18';
  }
  if (c.op === 'Slice' && opset < 10) {
    if (inputs[4] && inputs[4].name !== '') {
      if (!isConstInts(inputs[4]) || constInts(inputs[4]).some((s) => s !== 1)) return 'Slice steps exist from opset 10';
      inputs[4].name = '';
    }
    why = toAttr(1, 'starts') ?? toAttr(2, 'ends') ?? toAttr(3, 'axes');
  }
  if (c.op === 'Pad' && opset < 11) {
    if (inputs[3] && inputs[3].name !== '') return 'Pad axes exist from opset 18';
    why = toAttr(1, 'pads');
    const value = inputs[2];
    if (!why && value && value.name !== '') {
      if (!value.constant || !Array.isArray(value.values)) return 'Pad constant_value is a run-time value';
      attrs['value'] = { kind: 'float', value: (value.values as number[])[0]! };
      value.name = '';
    }
  }
  if (c.op === 'Clip' && opset < 11) {
    for (const [at, attr] of [[1, 'min'], [2, 'max']] as const) {
      const inp = inputs[at];
      if (!inp || inp.name === '') continue;
      if (!inp.constant || !Array.isArray(inp.values)) return `Clip ${attr} is a run-time value`;
      attrs[attr] = { kind: 'float', value: (inp.values as number[])[0]! };
      inp.name = '';
    }
  }
  if (c.op === 'TopK' && opset < 10) why = toAttr(1, 'k');
  if (why) return why;
  // Trailing absent inputs are dropped (older schemas have fewer inputs).
  while (inputs.length > 1 && inputs[inputs.length - 1]!.name === '') inputs = inputs.slice(0, -1);
  if (inputs.some((i) => i.name === '') && ['Slice', 'Pad', 'Clip', 'TopK', 'Split', 'Squeeze', 'Unsqueeze'].includes(c.op) && opset < 13) {
    return 'an absent optional input in the middle';
  }
  if (c.op === 'Gemm' && opset < 11 && !(inputs[2] && inputs[2].name !== '')) return 'Gemm C is optional from opset 11';
  if (VARIADIC.has(c.op) && opset < 8 && inputs.some((i) => i.dims.join() !== inputs[0]!.dims.join())) return `${c.op} broadcasts from opset 8`;
  if (c.op === 'Dropout' && opset < 12 && inputs.length > 1) return 'Dropout ratio and training_mode are inputs from opset 12';
  if (c.op === 'MaxPool' && opset < 8 && (c.outputs ?? 1) > 1) return 'the Indices output exists from opset 8';
  if (c.op === 'GroupNormalization' && opset < 21 && inputs[1]?.dims[0] !== attrs['num_groups']) return 'per-channel scale and bias from opset 21';

  // Negative axes before opset 11.
  if (opset < 11) {
    const rank = c.op === 'Unsqueeze' ? rank0 + ((attrs['axes'] as number[] | undefined)?.length ?? 0) : rank0;
    const fix = (a: number) => (a < 0 ? a + rank : a);
    if (typeof attrs['axis'] === 'number' && attrs['axis'] < 0) attrs['axis'] = fix(attrs['axis']);
    if (Array.isArray(attrs['axes'])) attrs['axes'] = (attrs['axes'] as number[]).map(fix);
    if (c.op === 'Slice' && Array.isArray(attrs['axes'])) attrs['axes'] = (attrs['axes'] as number[]).map(fix);
  }
  return { ...c, opset, attrs, inputs };
}
