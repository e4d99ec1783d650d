/**
 * The finite-difference cases of the shape, reduction, normalisation and indexing rules
 * (rules-shape.test.ts runs them at the opsets given, with the backward ops some of them must or
 * must not use; rules-opset.test.ts runs them again at the lowest opset each op exists in).
 */
import { float } from '../../src/onnx/attributes.ts';
import { randomValues, type GradCheckCase } from '../helpers/gradcheck.ts';

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
/** Distinct values 0.05 apart in a scrambled order (no two within a float32 finite-difference step). */
const spaced = (dims: readonly number[]) => Array.from({ length: numel(dims) }, (_, i) => (((i * 37) % numel(dims)) - numel(dims) / 2) * 0.05);
/** Values at least 0.05 from 0 (Abs, LeakyRelu kinks). */
const away0 = (dims: readonly number[]) => randomValues(numel(dims), 5, -1, 1, [0], 0.05);
/** Near INT64_MAX and exactly representable as a double (2^63 − 1024). */
export const HUGE = 2 ** 63 - 1024;
export const i64 = (name: string, values: number[], dims = [values.length]) => ({ name, dims, type: 'int64' as const, constant: true, values });

export type ShapeCase = [string, GradCheckCase, { uses?: string[]; avoids?: string[] }?];

export const SHAPE_CASES: ShapeCase[] = [
  // ---- reductions: dX = Expand(keepdims ? dY : Unsqueeze(dY, axes), Shape(X)) (· 1/n for Mean)
  ['ReduceSum-13 axes=[-1] keepdims=0', { op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }, i64('axes', [-1])] }],
  ['ReduceSum-13 axes=[0,2] keepdims=1', { op: 'ReduceSum', opset: 13, inputs: [{ name: 'x', dims: [3, 3, 2], altDims: [5, 3, 2] }, i64('axes', [0, 2])] }],
  ['ReduceSum-13 no axes (all) keepdims=0', { op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['ReduceSum-18 empty axes, noop_with_empty_axes=1 (identity)', { op: 'ReduceSum', opset: 18, attrs: { keepdims: 0, noop_with_empty_axes: 1 }, inputs: [{ name: 'x', dims: [2, 3] }, i64('axes', [], [0])] }],
  [
    'ReduceSum-13 axes from a run-time input, keepdims=0',
    { op: 'ReduceSum', opset: 13, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3, 2], altDims: [2, 5, 2] }, { name: 'axes', dims: [1], type: 'int64', values: [-2] }] },
  ],
  ['ReduceSum-12 axes attribute', { op: 'ReduceSum', opset: 12, attrs: { axes: [1], keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['ReduceMean-13 axes=[1] keepdims=1, run-time count', { op: 'ReduceMean', opset: 13, attrs: { axes: [1] }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }, { uses: ['Size'] }],
  ['ReduceMean-17 axes=[-1,0] keepdims=0, static', { op: 'ReduceMean', opset: 17, attrs: { axes: [-1, 0], keepdims: 0 }, inputs: [{ name: 'x', dims: [3, 4, 2] }] }],
  ['ReduceMean-18 axes input [-1] keepdims=0', { op: 'ReduceMean', opset: 18, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4] }, i64('axes', [-1])] }],
  ['ReduceMean-18 all axes keepdims=1, run-time count', { op: 'ReduceMean', opset: 18, inputs: [{ name: 'x', dims: [3, 2], altDims: [5, 2] }] }],
  // dX = dY where X equals the max (ties share it); random values have no ties
  ['ReduceMax-13 axes=[1] keepdims=0', { op: 'ReduceMax', opset: 13, attrs: { axes: [1], keepdims: 0 }, inputs: [{ name: 'x', dims: [3, 3], altDims: [3, 5] }] }],
  ['ReduceMin-18 axes input [0] keepdims=1', { op: 'ReduceMin', opset: 18, inputs: [{ name: 'x', dims: [3, 3], altDims: [5, 3] }, i64('axes', [0])] }],
  // Ties share the gradient evenly: at a tie of two, central differences measure ½ for each
  ['ReduceMax-13 ties', { op: 'ReduceMax', opset: 13, attrs: { axes: [1] }, inputs: [{ name: 'x', dims: [2, 3], values: [1, 3, 3, 2, 0.5, 2] }] }],
  ['ReduceMin-18 ties, all axes', { op: 'ReduceMin', opset: 18, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 2], values: [-1, 0.5, -1, 0.25] }] }],
  ['ReduceMax-18 all axes keepdims=0', { op: 'ReduceMax', opset: 18, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],

  // dX = 2·X·dY; X·dY/Y (0 where Y = 0); dY·softmax(X); sign(X)·dY
  ['ReduceSumSquare-13 axes=[1] keepdims=0', { op: 'ReduceSumSquare', opset: 13, attrs: { axes: [1], keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['ReduceL2-18 axes input [-1]', { op: 'ReduceL2', opset: 18, inputs: [{ name: 'x', dims: [3, 3], altDims: [5, 3] }, i64('axes', [-1])] }],
  ['ReduceL2-13 a zero row gets a zero gradient', { op: 'ReduceL2', opset: 13, attrs: { axes: [1], keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 2], values: [0, 0, 0.3, -0.4] }] }],
  ['ReduceLogSumExp-13 all axes keepdims=0', { op: 'ReduceLogSumExp', opset: 13, attrs: { keepdims: 0 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['ReduceL1-18 axes input [0]', { op: 'ReduceL1', opset: 18, inputs: [{ name: 'x', dims: [3, 2], values: away0 }, i64('axes', [0])] }],
  ['ReduceLogSum-13 axes=[0] (positive inputs)', { op: 'ReduceLogSum', opset: 13, attrs: { axes: [0] }, inputs: [{ name: 'x', dims: [3, 2], altDims: [3, 4], values: (d) => randomValues(numel(d), 8, 0.2, 2) }] }],
  // dXᵢ = dY·Π_{j≠i} Xⱼ, rows with no zero, one zero and two zeros
  ['ReduceProd-13 axes=[1] with zeros', { op: 'ReduceProd', opset: 13, attrs: { axes: [1], keepdims: 0 }, inputs: [{ name: 'x', dims: [3, 3], values: [0.5, -1.2, 0.8, 0.7, 0, -0.9, 0, 0.6, 0] }] }],
  ['ReduceProd-18 all axes', { op: 'ReduceProd', opset: 18, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 4], values: (d) => randomValues(numel(d), 9, 0.5, 1.5) }] }],
  // dX = reverse CumSum of dY
  ['CumSum axis=1', { op: 'CumSum', inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }, i64('axis', [1], [])] }],
  ['CumSum axis=-1 reverse exclusive', { op: 'CumSum', attrs: { reverse: 1, exclusive: 1 }, inputs: [{ name: 'x', dims: [2, 4] }, i64('axis', [-1], [])] }],

  // ---- LayerNormalization: dX = inv·(g − mean g − x̂·mean(g·x̂)), g = dY·γ; dγ = Σ dY·x̂; dβ = Σ dY
  [
    'LayerNormalization-17 axis=-1, scale and bias',
    { op: 'LayerNormalization', opset: 17, attrs: { axis: -1, epsilon: float(1e-5) }, inputs: [{ name: 'x', dims: [2, 3, 4], altDims: [2, 5, 4] }, { name: 'scale', dims: [4] }, { name: 'bias', dims: [4] }] },
  ],
  [
    'LayerNormalization-18 axis=1 over two axes',
    { op: 'LayerNormalization', opset: 18, attrs: { axis: 1, epsilon: float(1e-3) }, inputs: [{ name: 'x', dims: [3, 3, 2], altDims: [5, 3, 2] }, { name: 'scale', dims: [3, 2] }, { name: 'bias', dims: [3, 2] }] },
  ],
  ['LayerNormalization-17 axis=0 (everything normalised)', { op: 'LayerNormalization', opset: 17, attrs: { axis: 0 }, inputs: [{ name: 'x', dims: [2, 3] }, { name: 'scale', dims: [2, 3] }, { name: 'bias', dims: [2, 3] }] }],
  ['LayerNormalization-17 no bias, frozen scale', { op: 'LayerNormalization', opset: 17, inputs: [{ name: 'x', dims: [3, 4] }, { name: 'scale', dims: [4], grad: false }] }],
  // Mean and InvStdDev outputs weighted too: dX += (dμ − dσ⁻¹·σ⁻³·(X − μ)) / n
  [
    'LayerNormalization-17 Mean and InvStdDev outputs used, dynamic normalised dim (float32: ORT emits them as float32)',
    { op: 'LayerNormalization', opset: 17, outputs: 3, dtype: 'float32', inputs: [{ name: 'x', dims: [3, 4], altDims: [3, 6] }, { name: 'scale', dims: [4], altDims: [6] }, { name: 'bias', dims: [4], altDims: [6] }] },
  ],

  // ---- reshaping: dX = Reshape(dY, Shape(X)), Transpose by perm⁻¹
  ['Reshape-13 [n,6] -> [-1,2,3]', { op: 'Reshape', opset: 13, inputs: [{ name: 'x', dims: [3, 6], altDims: [5, 6] }, i64('shape', [-1, 2, 3])] }],
  ['Transpose perm=[2,0,1]', { op: 'Transpose', attrs: { perm: [2, 0, 1] }, inputs: [{ name: 'x', dims: [2, 3, 3], altDims: [2, 5, 3] }] }],
  ['Transpose default perm', { op: 'Transpose', inputs: [{ name: 'x', dims: [2, 3, 4], altDims: [2, 5, 4] }] }],
  ['Squeeze-13 axes input [1]', { op: 'Squeeze', opset: 13, inputs: [{ name: 'x', dims: [2, 1, 3], altDims: [2, 1, 5] }, i64('axes', [1])] }],
  ['Squeeze-12 axes attribute [-1]', { op: 'Squeeze', opset: 12, attrs: { axes: [-1] }, inputs: [{ name: 'x', dims: [3, 2, 1], altDims: [5, 2, 1] }] }],
  ['Squeeze-13 no axes', { op: 'Squeeze', opset: 13, inputs: [{ name: 'x', dims: [1, 3, 1] }] }],
  ['Unsqueeze-13 axes input [0,-1]', { op: 'Unsqueeze', opset: 13, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }, i64('axes', [0, -1])] }],
  ['Unsqueeze-12 axes attribute [1]', { op: 'Unsqueeze', opset: 12, attrs: { axes: [1] }, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['Flatten axis=2', { op: 'Flatten', attrs: { axis: 2 }, inputs: [{ name: 'x', dims: [2, 3, 3, 2], altDims: [2, 5, 3, 2] }] }],

  // Reshape → Transpose → Reshape, run backwards
  ['DepthToSpace DCR', { op: 'DepthToSpace', attrs: { blocksize: 2 }, inputs: [{ name: 'x', dims: [1, 8, 2, 3], altDims: [2, 8, 3, 2] }] }],
  ['DepthToSpace CRD', { op: 'DepthToSpace', attrs: { blocksize: 2, mode: 'CRD' }, inputs: [{ name: 'x', dims: [2, 4, 2, 2] }] }],
  ['SpaceToDepth', { op: 'SpaceToDepth', attrs: { blocksize: 2 }, inputs: [{ name: 'x', dims: [1, 2, 4, 6], altDims: [2, 2, 6, 4] }] }],

  // ---- Concat → Split of dY by the input sizes; Split → Concat of dYᵢ (zeros where none)
  [
    'Concat axis=-1, two dynamic pieces',
    { op: 'Concat', attrs: { axis: -1 }, inputs: [{ name: 'a', dims: [2, 3], altDims: [2, 5] }, { name: 'b', dims: [2, 3] }, { name: 'c', dims: [2, 2], altDims: [2, 4] }] },
  ],
  ['Concat axis=0, one frozen input', { op: 'Concat', attrs: { axis: 0 }, inputs: [{ name: 'a', dims: [3, 2], altDims: [5, 2] }, { name: 'b', dims: [3, 2], grad: false }] }],
  [
    'Split-13 split=[1,2,2] axis=1, middle output unused (zeros)',
    { op: 'Split', opset: 13, attrs: { axis: 1 }, outputs: 3, skipOutputs: [1], inputs: [{ name: 'x', dims: [3, 5], altDims: [5, 5] }, i64('split', [1, 2, 2])] },
    { uses: ['ConstantOfShape'] },
  ],
  ['Split-18 num_outputs=2 along a dynamic axis', { op: 'Split', opset: 18, attrs: { axis: -1, num_outputs: 2 }, outputs: 2, inputs: [{ name: 'x', dims: [2, 4], altDims: [2, 6] }] }],
  ['Split-13 equal parts, only the last output used', { op: 'Split', opset: 13, outputs: 2, skipOutputs: [0], inputs: [{ name: 'x', dims: [4, 3], altDims: [4, 5] }] }],
  ['Split-12 split attribute', { op: 'Split', opset: 12, attrs: { axis: 0, split: [2, 1] }, outputs: 2, inputs: [{ name: 'x', dims: [3, 3], altDims: [3, 5] }] }],

  // ---- Slice: Pad dY back for unit steps, else ScatterND into zeros at the sliced flat indices
  [
    'Slice-13 negative start, near-INT64_MAX end, dynamic axis (Pad path)',
    { op: 'Slice', opset: 13, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4] }, i64('starts', [-3, 1]), i64('ends', [HUGE, 3]), i64('axes', [0, -1])] },
    { uses: ['Pad'], avoids: ['ScatterND'] },
  ],
  [
    'Slice-13 clamped starts/ends past the dims, no axes input',
    { op: 'Slice', opset: 13, inputs: [{ name: 'x', dims: [3, 3], altDims: [3, 5] }, i64('starts', [-HUGE, 2]), i64('ends', [2, 100])] },
    { uses: ['Pad'] },
  ],
  [
    'Slice-13 starts from a run-time input (Pad path, run-time pads)',
    { op: 'Slice', opset: 13, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }, { name: 'starts', dims: [1], type: 'int64', values: [-2] }, i64('ends', [-1]), i64('axes', [1])] },
    { uses: ['Pad'] },
  ],
  [
    'Slice-13 step -2 and step 2 (scatter path)',
    { op: 'Slice', opset: 13, inputs: [{ name: 'x', dims: [3, 5], altDims: [5, 5] }, i64('starts', [-1, 0]), i64('ends', [-1000, 1000]), i64('axes', [0, 1]), i64('steps', [-2, 2])] },
    { uses: ['ScatterND'] },
  ],
  [
    'Slice-13 axes from a run-time input (scatter path)',
    { op: 'Slice', opset: 13, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4] }, i64('starts', [1]), i64('ends', [-1]), { name: 'axes', dims: [1], type: 'int64', values: [0] }] },
    { uses: ['ScatterND'] },
  ],
  [
    'Slice-18 steps from a run-time input (scatter path)',
    { op: 'Slice', opset: 18, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }, i64('starts', [0]), i64('ends', [HUGE]), i64('axes', [1]), { name: 'steps', dims: [1], type: 'int64', values: [3] }] },
    { uses: ['ScatterND'] },
  ],

  // ---- Gather family: scatter-add dY into zeros (ScatterND/ScatterElements add ≥ 16, OneHot·dY before)
  [
    'Gather-13 axis=0, repeated and negative indices (OneHot path)',
    { op: 'Gather', opset: 13, attrs: { axis: 0 }, inputs: [{ name: 'data', dims: [3, 3], altDims: [5, 3] }, i64('idx', [0, -1, 0, 1])] },
    { uses: ['OneHot'] },
  ],
  [
    'Gather-16 axis=1, 2-D indices (ScatterND add path)',
    { op: 'Gather', opset: 16, attrs: { axis: 1 }, inputs: [{ name: 'data', dims: [2, 3, 3], altDims: [2, 5, 3] }, i64('idx', [0, 1, 1, -1], [2, 2])] },
    { uses: ['ScatterND'], avoids: ['OneHot'] },
  ],
  [
    'Gather-13 axis=1, 2-D indices on 3-D data (OneHot path)',
    { op: 'Gather', opset: 13, attrs: { axis: 1 }, inputs: [{ name: 'data', dims: [2, 3, 2], altDims: [3, 5, 2] }, i64('idx', [2, 0, -1, 2, 1, 0], [3, 2])] },
    { uses: ['OneHot'] },
  ],
  ['Gather-18 scalar index, axis=-1', { op: 'Gather', opset: 18, attrs: { axis: -1 }, inputs: [{ name: 'data', dims: [2, 3], altDims: [2, 5] }, i64('idx', [-2], [])] }],
  [
    'Gather-14 scalar run-time index, axis=1 (OneHot path)',
    { op: 'Gather', opset: 14, attrs: { axis: 1 }, inputs: [{ name: 'data', dims: [2, 3, 2], altDims: [2, 5, 2] }, { name: 'idx', dims: [], type: 'int64', values: [1] }] },
    { uses: ['OneHot'] },
  ],
  [
    'GatherElements-13 axis=1 (OneHot path)',
    { op: 'GatherElements', opset: 13, attrs: { axis: 1 }, inputs: [{ name: 'data', dims: [2, 3] }, i64('idx', [0, 2, 2, -1, 1, 1, 0, -3], [2, 4])] },
    { uses: ['OneHot'] },
  ],
  [
    'GatherElements-16 axis=0, run-time indices (ScatterElements add path)',
    {
      op: 'GatherElements',
      opset: 16,
      attrs: { axis: 0 },
      inputs: [
        { name: 'data', dims: [3, 3], altDims: [3, 5] },
        { name: 'idx', dims: [4, 3], altDims: [4, 5], type: 'int64', values: (d) => Array.from({ length: numel(d) }, (_, i) => ((i * 7) % 5) - 2) },
      ],
    },
    { uses: ['ScatterElements'] },
  ],

  [
    'GatherND-13 k=2 with negative indices (OneHot path)',
    { op: 'GatherND', opset: 13, inputs: [{ name: 'data', dims: [3, 3, 2], altDims: [3, 5, 2] }, i64('idx', [0, 1, 2, -1, 0, 1], [3, 2])] },
    { uses: ['OneHot'] },
  ],
  [
    'GatherND-16 k=1 repeated tuples (ScatterND add path)',
    { op: 'GatherND', opset: 16, inputs: [{ name: 'data', dims: [3, 2], altDims: [5, 2] }, i64('idx', [2, 0, 2], [3, 1])] },
    { uses: ['ScatterND'] },
  ],
  [
    'GatherND-13 batch_dims=1, last-token pooling (OneHot path)',
    { op: 'GatherND', opset: 13, attrs: { batch_dims: 1 }, inputs: [{ name: 'data', dims: [2, 3, 2], altDims: [4, 3, 2] }, { name: 'idx', dims: [2, 1], altDims: [4, 1], type: 'int64', values: (d) => Array.from({ length: d[0]! }, (_, i) => (i % 2 ? -1 : 1)) }] },
  ],
  [
    'GatherND-18 batch_dims=1, 2-D tuples (ScatterND add path)',
    { op: 'GatherND', opset: 18, attrs: { batch_dims: 1 }, inputs: [{ name: 'data', dims: [2, 3, 2], altDims: [3, 3, 2] }, { name: 'idx', dims: [2, 2, 2], altDims: [3, 2, 2], type: 'int64', values: (d) => Array.from({ length: numel(d) }, (_, i) => (i * 5) % 2) }] },
  ],
  // dData = dY with written slices zeroed (or dY for 'add'); dUpdates = GatherND/GatherElements(dY)
  [
    'ScatterND-13 data and updates',
    { op: 'ScatterND', opset: 13, inputs: [{ name: 'data', dims: [4, 3], altDims: [4, 5] }, i64('idx', [3, 1], [2, 1]), { name: 'upd', dims: [2, 3], altDims: [2, 5] }] },
  ],
  ['ScatterND-16 reduction=add', { op: 'ScatterND', opset: 16, attrs: { reduction: 'add' }, inputs: [{ name: 'data', dims: [3, 2] }, i64('idx', [0, 0], [2, 1]), { name: 'upd', dims: [2, 2] }] }],
  // reduction='mul': Y = data·P, P = product of the updates at each position; dU from the others' product
  ['ScatterND-16 reduction=mul, distinct indices, dynamic columns', { op: 'ScatterND', opset: 16, attrs: { reduction: 'mul' }, inputs: [{ name: 'data', dims: [4, 3], altDims: [4, 5] }, i64('idx', [3, 1], [2, 1]), { name: 'upd', dims: [2, 3], altDims: [2, 5] }] }],
  ['ScatterND-16 reduction=mul, repeated indices', { op: 'ScatterND', opset: 16, attrs: { reduction: 'mul' }, inputs: [{ name: 'data', dims: [3, 2] }, i64('idx', [0, 2, 0], [3, 1]), { name: 'upd', dims: [3, 2] }] }],
  [
    'ScatterND-18 reduction=mul, repeated indices with zero updates (one zero, two zeros)',
    { op: 'ScatterND', opset: 18, attrs: { reduction: 'mul' }, inputs: [{ name: 'data', dims: [2, 2] }, i64('idx', [0, 0, 1, 1, 1], [5, 1]), { name: 'upd', dims: [5, 2], values: [0, 0.5, 0.7, -1.2, 0, 0, 0.3, 0.9, 0, 1.1] }] },
  ],
  ['ScatterND-16 reduction=mul, element indices (k = rank)', { op: 'ScatterND', opset: 16, attrs: { reduction: 'mul' }, inputs: [{ name: 'data', dims: [2, 3] }, i64('idx', [0, 1, 1, 2, 0, 1], [3, 2]), { name: 'upd', dims: [3] }] }],
  [
    'ScatterElements-13 axis=1 data and updates',
    { op: 'ScatterElements', opset: 13, attrs: { axis: 1 }, inputs: [{ name: 'data', dims: [2, 4] }, i64('idx', [3, 0, -1, 1], [2, 2]), { name: 'upd', dims: [2, 2] }] },
  ],
  [
    'ScatterElements-18 reduction=add',
    { op: 'ScatterElements', opset: 18, attrs: { axis: 0, reduction: 'add' }, inputs: [{ name: 'data', dims: [3, 2] }, i64('idx', [1, 1, 1, 0], [2, 2]), { name: 'upd', dims: [2, 2] }] },
  ],
  [
    'ScatterElements-16 reduction=mul, repeated indices along axis 1',
    { op: 'ScatterElements', opset: 16, attrs: { axis: 1, reduction: 'mul' }, inputs: [{ name: 'data', dims: [2, 3] }, i64('idx', [2, 2, 0, 1, 1, 1], [2, 3]), { name: 'upd', dims: [2, 3] }] },
  ],

  // dX = ScatterElements(zeros, Indices, dValues): the values' positions, distinct per slice
  ['TopK k=2 largest, axis=-1', { op: 'TopK', outputs: 2, skipOutputs: [1], inputs: [{ name: 'x', dims: [2, 4], altDims: [3, 5] }, i64('k', [2])] }],
  ['TopK-11 k=3 smallest, axis=0, unsorted', { op: 'TopK', opset: 11, outputs: 2, skipOutputs: [1], attrs: { axis: 0, largest: 0, sorted: 0 }, inputs: [{ name: 'x', dims: [4, 2], altDims: [5, 3] }, i64('k', [3])] }],

  // ---- broadcasting, tiling, padding
  ['Expand [n,1] to [2,1,5]', { op: 'Expand', inputs: [{ name: 'x', dims: [3, 1], altDims: [5, 1] }, i64('shape', [2, 1, 5])] }],
  ['Tile repeats=[2,1,3]', { op: 'Tile', inputs: [{ name: 'x', dims: [2, 3, 1], altDims: [2, 5, 1] }, i64('reps', [2, 1, 3])] }],
  ['Tile static', { op: 'Tile', inputs: [{ name: 'x', dims: [2, 3] }, i64('reps', [3, 2])] }],
  ['Tile repeats from a run-time input', { op: 'Tile', inputs: [{ name: 'x', dims: [3, 2], altDims: [5, 2] }, { name: 'reps', dims: [2], type: 'int64', values: [1, 3] }] }],
  // dX = Pad(dY, −pads): positive pads crop, negative pads (forward crop) give zeros
  [
    'Pad-13 constant pads, nonzero constant_value',
    { op: 'Pad', opset: 13, inputs: [{ name: 'x', dims: [3, 3], altDims: [5, 3] }, i64('pads', [1, 0, 0, 2]), { name: 'v', dims: [], constant: true, values: [0.5] }] },
    { uses: ['Slice'], avoids: ['Pad'] },
  ],
  ['Pad-18 axes input, positive pads', { op: 'Pad', opset: 18, inputs: [{ name: 'x', dims: [2, 3, 2], altDims: [2, 5, 2] }, i64('pads', [1, 0, 2, 1]), { name: '', dims: [] }, i64('axes', [-2, 0])] }, { uses: ['Slice'] }],
  ['Pad-18 axes input, negative pad (crop)', { op: 'Pad', opset: 18, inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }, i64('pads', [2, -1]), { name: '', dims: [] }, i64('axes', [-1])] }],
  ['Pad-13 pads from a run-time input', { op: 'Pad', opset: 13, inputs: [{ name: 'x', dims: [3, 2], altDims: [5, 2] }, { name: 'pads', dims: [4], type: 'int64', values: [0, 1, 1, -1] }] }],

  // ---- Conv (float32): dX = ConvTranspose(dY, W), dW = Conv(Xᵀ, dYᵀ) strides↔dilations, dB = Σ dY
  [
    'Conv 2-D stride 2, asymmetric pads, bias, dynamic height (float32)',
    {
      op: 'Conv',
      dtype: 'float32',
      attrs: { strides: [2, 2], pads: [1, 0, 1, 1] },
      inputs: [{ name: 'x', dims: [1, 2, 5, 5], altDims: [1, 2, 6, 5] }, { name: 'w', dims: [3, 2, 3, 2] }, { name: 'bias', dims: [3] }],
    },
  ],
  ['Conv 1-D group=2 dilation=2 (float32)', { op: 'Conv', dtype: 'float32', attrs: { group: 2, dilations: [2] }, inputs: [{ name: 'x', dims: [2, 4, 7] }, { name: 'w', dims: [4, 2, 2] }] }],
  [
    'Conv 1-D group=2 stride 3, dynamic batch and length (float32)',
    { op: 'Conv', dtype: 'float32', attrs: { group: 2, strides: [3], pads: [0, 2] }, inputs: [{ name: 'x', dims: [1, 4, 7], altDims: [2, 4, 9] }, { name: 'w', dims: [2, 2, 2] }] },
  ],
  ['Conv 2-D auto_pad=SAME_UPPER stride 2 (float32)', { op: 'Conv', dtype: 'float32', attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' }, inputs: [{ name: 'x', dims: [1, 1, 5, 4] }, { name: 'w', dims: [2, 1, 3, 3] }] }],

  // ---- pooling and batch/instance normalisation
  ['GlobalAveragePool, dynamic spatial (float32)', { op: 'GlobalAveragePool', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 2, 3, 2], altDims: [2, 2, 5, 2] }] }],
  ['GlobalMaxPool (float32)', { op: 'GlobalMaxPool', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 2, 3], altDims: [2, 2, 5] }] }],
  // dX = Sᵀ(dY / c): window sums transposed (ConvTranspose with a ones kernel), c = window count
  ['AveragePool 2-D stride 2 (float32)', { op: 'AveragePool', dtype: 'float32', attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ name: 'x', dims: [2, 2, 4, 5], altDims: [3, 2, 5, 5] }] }],
  [
    'AveragePool pads, count_include_pad=0, overlapping (float32)',
    { op: 'AveragePool', dtype: 'float32', attrs: { kernel_shape: [3, 2], strides: [1, 2], pads: [1, 0, 1, 1] }, inputs: [{ name: 'x', dims: [1, 2, 4, 4], altDims: [2, 3, 5, 4] }] },
  ],
  ['AveragePool 1-D pads, count_include_pad=1 (float32)', { op: 'AveragePool', dtype: 'float32', attrs: { kernel_shape: [3], strides: [2], pads: [1, 1], count_include_pad: 1 }, inputs: [{ name: 'x', dims: [2, 3, 6] }] }],
  // ceil_mode: the last windows reach past the padded extent; those taps never count
  ['AveragePool ceil_mode=1, no pads (float32)', { op: 'AveragePool', dtype: 'float32', attrs: { kernel_shape: [2], ceil_mode: 1, strides: [2] }, inputs: [{ name: 'x', dims: [1, 2, 5] }] }],
  [
    'AveragePool-19 ceil_mode=1, pads, count_include_pad=0, 2-D (float32)',
    { op: 'AveragePool', opset: 19, dtype: 'float32', attrs: { kernel_shape: [3, 2], ceil_mode: 1, strides: [2, 2], pads: [1, 0, 1, 0] }, inputs: [{ name: 'x', dims: [2, 2, 6, 5] }] },
  ],
  [
    'AveragePool-19 ceil_mode=1, pads, count_include_pad=1 (float32)',
    { op: 'AveragePool', opset: 19, dtype: 'float32', attrs: { kernel_shape: [3], ceil_mode: 1, strides: [2], pads: [1, 1], count_include_pad: 1 }, inputs: [{ name: 'x', dims: [2, 3, 8] }] },
  ],
  ['AveragePool-19 dilations, pads (float32)', { op: 'AveragePool', opset: 19, dtype: 'float32', attrs: { kernel_shape: [2, 2], dilations: [2, 1], pads: [1, 1, 0, 1] }, inputs: [{ name: 'x', dims: [1, 2, 5, 4], altDims: [2, 2, 6, 4] }] }],
  // dX = ScatterElements-add of dY at MaxPool's flat Indices
  ['MaxPool-13 non-overlapping 2x2', { op: 'MaxPool', opset: 13, attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ name: 'x', dims: [2, 2, 4, 4], altDims: [1, 3, 6, 4] }] }],
  ['MaxPool-18 overlapping windows, pads, dilation', { op: 'MaxPool', opset: 18, attrs: { kernel_shape: [3], strides: [1], pads: [1, 1], dilations: [2] }, inputs: [{ name: 'x', dims: [2, 2, 7], altDims: [2, 3, 9] }] }, { uses: ['ScatterElements'] }],
  ['MaxPool-18 with its Indices output', { op: 'MaxPool', opset: 18, outputs: 2, skipOutputs: [1], attrs: { kernel_shape: [2, 2] }, inputs: [{ name: 'x', dims: [1, 1, 3, 3] }] }, { avoids: ['MaxPool'] }],
  // Opsets 7 and 8 (no scatter): per-offset sampling and placement; values kept 0.05 apart so the float32 step never swaps a maximum
  ['MaxPool-1 overlapping 2x2 stride 1 (float32; the backward graph at opset 7)', { op: 'MaxPool', opset: 1, dtype: 'float32', attrs: { kernel_shape: [2, 2], strides: [1, 1] }, inputs: [{ name: 'x', dims: [1, 2, 3, 4], values: spaced }] }],
  ['MaxPool-7 2-D kernel 2 stride 2, pads (float32)', { op: 'MaxPool', opset: 7, dtype: 'float32', attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 0, 0, 1] }, inputs: [{ name: 'x', dims: [2, 2, 3, 4], values: spaced }] }],
  ['MaxPool-8 overlapping 3x2 stride 1, double', { op: 'MaxPool', opset: 8, attrs: { kernel_shape: [3, 2], strides: [1, 1], pads: [1, 1, 1, 0] }, inputs: [{ name: 'x', dims: [1, 2, 4, 3] }] }],
  ['MaxPool-7 1-D auto_pad=SAME_UPPER stride 2 (float32)', { op: 'MaxPool', opset: 7, dtype: 'float32', attrs: { kernel_shape: [3], strides: [2], auto_pad: 'SAME_UPPER' }, inputs: [{ name: 'x', dims: [2, 1, 7], values: spaced }] }],
  // Overlapping windows before opset 16 (no scatter-add): outputs grouped so no group selects an element twice
  ['MaxPool-13 overlapping windows, 1-D kernel 2 stride 1', { op: 'MaxPool', opset: 13, attrs: { kernel_shape: [2], strides: [1] }, inputs: [{ name: 'x', dims: [1, 2, 6] }] }, { avoids: ['ScatterND'] }],
  [
    'MaxPool-13 overlapping 3x3 stride 2, pads, dynamic spatial (Range/Mod groups)',
    { op: 'MaxPool', opset: 13, attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, inputs: [{ name: 'x', dims: [2, 2, 5, 5], altDims: [1, 3, 7, 6] }] },
    { uses: ['Mod'] },
  ],
  ['MaxPool-11 overlapping, dilation 2, ceil_mode=1', { op: 'MaxPool', opset: 11, attrs: { kernel_shape: [2, 2], strides: [1, 2], dilations: [2, 1], ceil_mode: 1 }, inputs: [{ name: 'x', dims: [2, 1, 5, 5] }] }],
  ['MaxPool-13 ceil_mode=1 non-overlapping', { op: 'MaxPool', opset: 13, attrs: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }, inputs: [{ name: 'x', dims: [1, 2, 5, 3], altDims: [2, 2, 7, 3] }] }],
  // storage_order=1: the node's Indices are column-major, so row-major ones are recomputed
  ['MaxPool-18 storage_order=1 with its Indices output', { op: 'MaxPool', opset: 18, outputs: 2, skipOutputs: [1], attrs: { kernel_shape: [2, 2], storage_order: 1, strides: [1, 1] }, inputs: [{ name: 'x', dims: [1, 2, 3, 4] }] }, { uses: ['MaxPool'] }],
  ['MaxPool-10 storage_order=1, overlapping (Scatter groups)', { op: 'MaxPool', opset: 10, attrs: { kernel_shape: [3, 2], storage_order: 1, strides: [1, 1] }, inputs: [{ name: 'x', dims: [1, 1, 4, 4] }] }, { uses: ['Scatter'] }],
  // dX = dY·γ·inv, dγ = Σ dY·x̂, dβ = Σ dY (inference mode; running stats frozen)
  [
    'BatchNormalization-15 inference, 4-D',
    {
      op: 'BatchNormalization',
      opset: 15,
      attrs: { epsilon: float(1e-3) },
      inputs: [
        { name: 'x', dims: [2, 3, 2, 2], altDims: [3, 3, 2, 3] },
        { name: 'scale', dims: [3] },
        { name: 'bias', dims: [3] },
        { name: 'mean', dims: [3], constant: true, values: [0.1, -0.2, 0.3] },
        { name: 'var', dims: [3], constant: true, values: [0.5, 1.5, 0.8] },
      ],
    },
  ],
  [
    'BatchNormalization-14 inference, 2-D',
    { op: 'BatchNormalization', opset: 14, inputs: [{ name: 'x', dims: [4, 3] }, { name: 'scale', dims: [3] }, { name: 'bias', dims: [3] }, { name: 'mean', dims: [3], constant: true, values: [0, 1, -1] }, { name: 'var', dims: [3], constant: true, values: [1, 2, 0.5] }] },
  ],
  // Training mode: batch statistics, x̂ = (X − μ_B)·inv; dX = inv·(g − mean g − x̂·mean(g·x̂)), g = dY·γ
  [
    'BatchNormalization-15 training_mode=1, 4-D, dynamic batch and spatial, running stats unweighted',
    {
      op: 'BatchNormalization',
      opset: 15,
      attrs: { training_mode: 1, epsilon: float(1e-3), momentum: float(0.8) },
      outputs: 3,
      skipOutputs: [1, 2],
      inputs: [
        { name: 'x', dims: [2, 3, 2, 2], altDims: [3, 3, 2, 3] },
        { name: 'scale', dims: [3] },
        { name: 'bias', dims: [3] },
        { name: 'mean', dims: [3], constant: true, values: [0.1, -0.2, 0.3] },
        { name: 'var', dims: [3], constant: true, values: [0.5, 1.5, 0.8] },
      ],
    },
  ],
  [
    'BatchNormalization-14 training_mode=1, 2-D, frozen scale',
    { op: 'BatchNormalization', opset: 14, attrs: { training_mode: 1 }, outputs: 3, skipOutputs: [1, 2], inputs: [{ name: 'x', dims: [5, 3], altDims: [7, 3] }, { name: 'scale', dims: [3], grad: false }, { name: 'bias', dims: [3] }, { name: 'mean', dims: [3], constant: true, values: [0, 1, -1] }, { name: 'var', dims: [3], constant: true, values: [1, 2, 0.5] }] },
  ],
  [
    'BatchNormalization-9 training (five outputs), 3-D',
    { op: 'BatchNormalization', opset: 9, outputs: 5, skipOutputs: [1, 2, 3, 4], inputs: [{ name: 'x', dims: [3, 2, 4] }, { name: 'scale', dims: [2] }, { name: 'bias', dims: [2] }, { name: 'mean', dims: [2], constant: true, values: [0, 0] }, { name: 'var', dims: [2], constant: true, values: [1, 1] }] },
  ],
  [
    'BatchNormalization-7 spatial=0 inference (per-activation statistics, float32)',
    { op: 'BatchNormalization', opset: 7, dtype: 'float32', attrs: { spatial: 0 }, inputs: [{ name: 'x', dims: [3, 2, 2] }, { name: 'scale', dims: [2, 2] }, { name: 'bias', dims: [2, 2] }, { name: 'mean', dims: [2, 2], constant: true, values: [0, 0.5, -0.5, 1] }, { name: 'var', dims: [2, 2], constant: true, values: [1, 2, 0.5, 1.5] }] },
  ],
  [
    'GroupNormalization-18 per-group scale and bias',
    { op: 'GroupNormalization', opset: 18, attrs: { num_groups: 2, epsilon: float(1e-3) }, inputs: [{ name: 'x', dims: [2, 4, 3], altDims: [3, 4, 5] }, { name: 'scale', dims: [2] }, { name: 'bias', dims: [2] }] },
  ],
  [
    'GroupNormalization-21 per-channel scale and bias (float32: it normalises in float32, stash_type)',
    { op: 'GroupNormalization', opset: 21, dtype: 'float32', attrs: { num_groups: 2 }, inputs: [{ name: 'x', dims: [2, 4, 3], altDims: [3, 4, 5] }, { name: 'scale', dims: [4] }, { name: 'bias', dims: [4] }] },
  ],
  [
    'InstanceNormalization 3-D (float32)',
    { op: 'InstanceNormalization', dtype: 'float32', attrs: { epsilon: float(1e-3) }, inputs: [{ name: 'x', dims: [2, 3, 4], altDims: [3, 3, 6] }, { name: 'scale', dims: [3] }, { name: 'bias', dims: [3] }] },
  ],

  // dX = Conv(dY, W); dW = Conv(dYᵀ, Xᵀ) strides↔dilations, sliced to k; dB = Σ dY
  [
    'ConvTranspose 2-D stride 2, pads, output_padding, bias, dynamic (float32)',
    {
      op: 'ConvTranspose',
      dtype: 'float32',
      attrs: { strides: [2, 2], pads: [1, 0, 0, 1], output_padding: [1, 0] },
      inputs: [{ name: 'x', dims: [1, 2, 3, 3], altDims: [2, 2, 4, 3] }, { name: 'w', dims: [2, 3, 3, 2] }, { name: 'bias', dims: [3] }],
    },
  ],
  [
    'ConvTranspose 1-D group=2 dilation=2 stride 3 (float32)',
    { op: 'ConvTranspose', dtype: 'float32', attrs: { group: 2, dilations: [2], strides: [3] }, inputs: [{ name: 'x', dims: [2, 4, 3], altDims: [1, 4, 5] }, { name: 'w', dims: [4, 1, 2] }] },
  ],
  // Implicit crops: total t = (in − 1)·s + op + (k − 1)·d + 1 − out, odd here so the split shows
  ['ConvTranspose 1-D auto_pad=SAME_UPPER stride 2, odd crop, dynamic length (float32)', { op: 'ConvTranspose', dtype: 'float32', attrs: { strides: [2], auto_pad: 'SAME_UPPER' }, inputs: [{ name: 'x', dims: [1, 2, 4], altDims: [2, 2, 5] }, { name: 'w', dims: [2, 3, 3] }] }],
  ['ConvTranspose 2-D auto_pad=SAME_LOWER stride 2, odd crop (float32)', { op: 'ConvTranspose', dtype: 'float32', attrs: { strides: [2, 2], auto_pad: 'SAME_LOWER' }, inputs: [{ name: 'x', dims: [1, 2, 3, 3] }, { name: 'w', dims: [2, 2, 3, 2] }, { name: 'bias', dims: [2] }] }],
  ['ConvTranspose 1-D output_shape, odd crop (float32)', { op: 'ConvTranspose', dtype: 'float32', attrs: { strides: [2], output_shape: [9] }, inputs: [{ name: 'x', dims: [2, 2, 4] }, { name: 'w', dims: [2, 1, 4] }] }],
  [
    'ConvTranspose 2-D output_shape with output_padding and dilation, odd crops (float32)',
    { op: 'ConvTranspose', dtype: 'float32', attrs: { strides: [2, 1], dilations: [1, 2], output_padding: [1, 0], output_shape: [6, 4] }, inputs: [{ name: 'x', dims: [1, 2, 3, 3] }, { name: 'w', dims: [2, 3, 2, 2] }] },
  ],
  ['ConvTranspose 1-D output_shape with auto_pad=SAME_UPPER, odd crop (float32)', { op: 'ConvTranspose', dtype: 'float32', attrs: { strides: [3], auto_pad: 'SAME_UPPER', output_shape: [8] }, inputs: [{ name: 'x', dims: [1, 1, 4] }, { name: 'w', dims: [1, 2, 4] }] }],

  // ---- elementwise
  ['Sin', { op: 'Sin', inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['Cos', { op: 'Cos', inputs: [{ name: 'x', dims: [2, 3], altDims: [2, 5] }] }],
  ['Abs', { op: 'Abs', inputs: [{ name: 'x', dims: [2, 3], values: away0 }] }],
  ['LeakyRelu alpha=0.2', { op: 'LeakyRelu', opset: 16, attrs: { alpha: float(0.2) }, inputs: [{ name: 'x', dims: [2, 3], values: away0 }] }],
  ['Sum of three, broadcasting', { op: 'Sum', inputs: [{ name: 'a', dims: [2, 3], altDims: [2, 5] }, { name: 'b', dims: [3], altDims: [5] }, { name: 'c', dims: [2, 1] }] }],
  ['Mean of two, broadcasting (float32)', { op: 'Mean', dtype: 'float32', inputs: [{ name: 'a', dims: [3, 3], altDims: [3, 5] }, { name: 'b', dims: [1, 3], altDims: [1, 5] }] }],
  ['Trilu upper k=1', { op: 'Trilu', opset: 14, attrs: { upper: 1 }, inputs: [{ name: 'x', dims: [2, 3, 3], altDims: [2, 3, 5] }, i64('k', [1], [])] }],
  ['Trilu lower', { op: 'Trilu', opset: 14, attrs: { upper: 0 }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4] }] }],

  // ---- Einsum: dXᵢ = Einsum(dY, others; "out,others->inᵢ")
  ['Einsum ij,jk->ik', { op: 'Einsum', attrs: { equation: 'ij,jk->ik' }, inputs: [{ name: 'a', dims: [2, 3], altDims: [2, 5] }, { name: 'b', dims: [3, 3], altDims: [5, 3] }] }],
  ['Einsum bij,bkj->bik', { op: 'Einsum', attrs: { equation: 'bij,bkj->bik' }, inputs: [{ name: 'a', dims: [2, 3, 3], altDims: [2, 5, 3] }, { name: 'b', dims: [2, 2, 3] }] }],
  ['Einsum implicit output, summed-away index (ij,j)', { op: 'Einsum', attrs: { equation: 'ij,j' }, inputs: [{ name: 'a', dims: [2, 3] }, { name: 'v', dims: [3] }] }],
  ['Einsum ij-> (sum of all)', { op: 'Einsum', attrs: { equation: 'ij->' }, inputs: [{ name: 'a', dims: [2, 3], altDims: [2, 5] }] }, { uses: ['Expand'] }],
  ['Einsum ellipsis, index only in one operand', { op: 'Einsum', attrs: { equation: '...ij,...jk->...k' }, inputs: [{ name: 'a', dims: [2, 3, 3], altDims: [2, 5, 3] }, { name: 'b', dims: [2, 3, 2] }] }],
  // Repeated letters (diagonals): the gradient is put back on the diagonal (identity matrices)
  ['Einsum ii->i (diagonal), dynamic size', { op: 'Einsum', attrs: { equation: 'ii->i' }, inputs: [{ name: 'a', dims: [3, 3], altDims: [5, 5] }] }, { uses: ['EyeLike'] }],
  ['Einsum ii-> (trace)', { op: 'Einsum', attrs: { equation: 'ii->' }, inputs: [{ name: 'a', dims: [4, 4] }] }],
  ['Einsum iij->j, dynamic j', { op: 'Einsum', attrs: { equation: 'iij->j' }, inputs: [{ name: 'a', dims: [2, 2, 3], altDims: [2, 2, 5] }] }],
  ['Einsum iji->ij (repeat not adjacent)', { op: 'Einsum', attrs: { equation: 'iji->ij' }, inputs: [{ name: 'a', dims: [3, 2, 3] }] }],
  ['Einsum ij,jj->i (diagonal of the second operand)', { op: 'Einsum', attrs: { equation: 'ij,jj->i' }, inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [3, 3] }] }],
  ['Einsum iii->i (two repeats)', { op: 'Einsum', attrs: { equation: 'iii->i' }, inputs: [{ name: 'a', dims: [3, 3, 3] }] }],
];
