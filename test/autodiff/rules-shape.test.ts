/**
 * Finite-difference checks of the shape, reduction, normalisation and indexing gradient rules
 * through onnxruntime (see test/helpers/gradcheck.ts). Most cases give `altDims`: the gradient
 * graph is built once from shapes probed at both sizes and checked at both, so a rule that baked
 * a run-time size into a constant fails. float64 where ORT's CPU kernels take doubles; float32
 * (eps 1e-2, atol = rtol = 2e-3) where they do not: Conv/ConvTranspose, Mean, GlobalAveragePool,
 * GlobalMaxPool, InstanceNormalization, and LayerNorm's Mean/InvStdDev outputs (float32 in ORT).
 * Some cases also assert which backward path was taken (Pad vs ScatterND, OneHot vs ScatterND).
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { describe, expect, it } from 'vitest';
import { float, type AttrValue } from '../../src/onnx/attributes.ts';
import { DataType as DT, floatToHalfBits, halfBitsToFloat } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { floatTensor, int64Tensor } from '../../src/onnx/tensor.ts';
import { ort } from '../../src/node/onnxruntime.ts';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { gradCheck, randomValues, type GradCheckCase } from '../helpers/gradcheck.ts';

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
/** Values at least 0.05 from 0 (Abs, LeakyRelu kinks). */
const away0 = (dims: readonly number[]) => randomValues(numel(dims), 5, -1, 1, [0], 0.05);
/** Near INT64_MAX and exactly representable as a double (2^63 − 1024). */
const HUGE = 2 ** 63 - 1024;
const i64 = (name: string, values: number[], dims = [values.length]) => ({ name, dims, type: 'int64' as const, constant: true, values });

type Case = [string, GradCheckCase, { uses?: string[]; avoids?: string[] }?];

const CASES: Case[] = [
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
  [
    'ScatterElements-13 axis=1 data and updates',
    { op: 'ScatterElements', opset: 13, attrs: { axis: 1 }, inputs: [{ name: 'data', dims: [2, 4] }, i64('idx', [3, 0, -1, 1], [2, 2]), { name: 'upd', dims: [2, 2] }] },
  ],
  [
    'ScatterElements-18 reduction=add',
    { op: 'ScatterElements', opset: 18, attrs: { axis: 0, reduction: 'add' }, inputs: [{ name: 'data', dims: [3, 2] }, i64('idx', [1, 1, 1, 0], [2, 2]), { name: 'upd', dims: [2, 2] }] },
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
  // dX = ScatterElements-add of dY at MaxPool's flat Indices
  ['MaxPool-13 non-overlapping 2x2', { op: 'MaxPool', opset: 13, attrs: { kernel_shape: [2, 2], strides: [2, 2] }, inputs: [{ name: 'x', dims: [2, 2, 4, 4], altDims: [1, 3, 6, 4] }] }],
  ['MaxPool-18 overlapping windows, pads, dilation', { op: 'MaxPool', opset: 18, attrs: { kernel_shape: [3], strides: [1], pads: [1, 1], dilations: [2] }, inputs: [{ name: 'x', dims: [2, 2, 7], altDims: [2, 3, 9] }] }, { uses: ['ScatterElements'] }],
  ['MaxPool-18 with its Indices output', { op: 'MaxPool', opset: 18, outputs: 2, skipOutputs: [1], attrs: { kernel_shape: [2, 2] }, inputs: [{ name: 'x', dims: [1, 1, 3, 3] }] }, { avoids: ['MaxPool'] }],
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
];

describe('gradient rules: shape, reduction, normalisation, indexing (finite differences through onnxruntime)', () => {
  it.each(CASES)('%s', async (_label, c, expectOps) => {
    const r = await gradCheck(c);
    expect(r.maxErr, JSON.stringify(r.perInput)).toBeLessThanOrEqual(r.tolerance);
    if (r.alt) expect(r.alt.maxErr, `alt dims: ${JSON.stringify(r.alt.perInput)}`).toBeLessThanOrEqual(r.alt.tolerance);
    for (const op of expectOps?.uses ?? []) expect(r.backwardOps).toContain(op);
    for (const op of expectOps?.avoids ?? []) expect(r.backwardOps).not.toContain(op);
  });

  it('every rule of this family has a case above', () => {
    const covered = new Set(CASES.map(([, c]) => c.op));
    expect(FAMILY.filter((op) => !covered.has(op))).toEqual([]);
  });
});

/** The shape, reduction, normalisation and indexing rules (src/autodiff/rules/<op>.ts). */
const FAMILY = [
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSumSquare', 'ReduceL2', 'ReduceL1', 'ReduceLogSumExp', 'ReduceLogSum', 'ReduceProd',
  'LayerNormalization', 'BatchNormalization', 'InstanceNormalization', 'GroupNormalization', 'GlobalAveragePool', 'GlobalMaxPool', 'AveragePool', 'MaxPool',
  'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten', 'DepthToSpace', 'SpaceToDepth', 'Concat', 'Split', 'Slice', 'Expand', 'Tile', 'Pad', 'CumSum',
  'Gather', 'GatherElements', 'GatherND', 'ScatterND', 'ScatterElements', 'TopK',
  'Conv', 'ConvTranspose', 'Einsum', 'Sin', 'Cos', 'Abs', 'LeakyRelu', 'Sum', 'Mean', 'Trilu',
];

const UNSUPPORTED: Array<[string, GradCheckCase, RegExp]> = [
  ['AveragePool ceil_mode=1', { op: 'AveragePool', dtype: 'float32', attrs: { kernel_shape: [2], ceil_mode: 1, strides: [2] }, inputs: [{ name: 'x', dims: [1, 1, 5] }] }, /ceil_mode=1/],
  ['MaxPool-13 overlapping windows', { op: 'MaxPool', opset: 13, attrs: { kernel_shape: [2], strides: [1] }, inputs: [{ name: 'x', dims: [1, 1, 5] }] }, /overlapping/],
  ['Pad reflect mode', { op: 'Pad', opset: 13, attrs: { mode: 'reflect' }, inputs: [{ name: 'x', dims: [2, 3] }, i64('pads', [0, 1, 0, 1])] }, /Pad node .*mode 'reflect'/],
  ['ScatterND reduction=mul', { op: 'ScatterND', opset: 16, attrs: { reduction: 'mul' }, inputs: [{ name: 'data', dims: [3, 2] }, i64('idx', [0], [1, 1]), { name: 'upd', dims: [1, 2] }] }, /reduction 'mul'/],
  ['Einsum diagonal operand', { op: 'Einsum', attrs: { equation: 'ii->i' }, inputs: [{ name: 'a', dims: [3, 3] }] }, /repeated index/],
  [
    'BatchNormalization training_mode=1',
    { op: 'BatchNormalization', opset: 15, attrs: { training_mode: 1 }, outputs: 3, skipOutputs: [1, 2], dtype: 'float32', inputs: [{ name: 'x', dims: [4, 2] }, { name: 'scale', dims: [2] }, { name: 'bias', dims: [2] }, { name: 'mean', dims: [2], constant: true, values: [0, 0] }, { name: 'var', dims: [2], constant: true, values: [1, 1] }] },
    /training_mode=1/,
  ],
];

describe('shape-family rules: unsupported variants fail loudly', () => {
  it.each(UNSUPPORTED)('EXPECTED FAILURE - %s', async (_label, c, message) => {
    await expect(gradCheck(c)).rejects.toMatchObject({ code: 'E_UNSUPPORTED_OP', message: expect.stringMatching(message) });
  });
});

// ---- half precision -------------------------------------------------------------------------
// float16 has no finite differences worth the name; instead the float16 backward graph must build,
// run on the CPU EP (casting around kernels it lacks, e.g. ScatterND/ScatterElements with
// reduction='add') and agree with the float32 graph within half-precision rounding.

interface HalfCase {
  op: string;
  opset: number;
  attrs?: Record<string, AttrValue>;
  x: number[];
  /** Constant int64 inputs after x (axes, indices, pads…). */
  ints?: Array<{ dims: number[]; values: number[] }>;
  /** x is passed twice (Concat, Sum). */
  twice?: boolean;
  outputs?: number;
}

const HALF_CASES: HalfCase[] = [
  { op: 'ReduceMean', opset: 18, x: [2, 3], ints: [{ dims: [1], values: [1] }] },
  { op: 'ReduceMax', opset: 13, attrs: { axes: [1] }, x: [2, 3] },
  { op: 'LayerNormalization', opset: 17, x: [2, 4] },
  { op: 'Concat', opset: 13, attrs: { axis: 0 }, x: [2, 3], twice: true },
  { op: 'Split', opset: 13, attrs: { axis: 1 }, x: [2, 4], outputs: 2 },
  { op: 'Slice', opset: 13, x: [2, 4], ints: [{ dims: [1], values: [0] }, { dims: [1], values: [4] }, { dims: [1], values: [1] }, { dims: [1], values: [2] }] },
  { op: 'Gather', opset: 13, x: [3, 2], ints: [{ dims: [3], values: [0, 2, 0] }] },
  { op: 'Gather', opset: 18, x: [3, 2], ints: [{ dims: [3], values: [0, 2, 0] }] },
  { op: 'GatherElements', opset: 18, x: [2, 2], ints: [{ dims: [2, 2], values: [0, 1, 1, 1] }] },
  { op: 'GatherND', opset: 18, x: [3, 2], ints: [{ dims: [3, 1], values: [2, 0, 2] }] },
  { op: 'Tile', opset: 13, x: [1, 3], ints: [{ dims: [2], values: [2, 1] }] },
  { op: 'Pad', opset: 13, x: [2, 3], ints: [{ dims: [4], values: [0, -1, 0, 1] }] },
  { op: 'CumSum', opset: 14, x: [2, 3], ints: [{ dims: [], values: [1] }] },
];

async function halfGrad(c: HalfCase, dt: number): Promise<number[]> {
  const g = create(GraphProtoSchema, { name: `half_${c.op}` });
  g.input.push(makeValueInfo('x', dt, c.x));
  const inputs = c.twice ? ['x', 'x'] : ['x'];
  (c.ints ?? []).forEach((t, i) => {
    g.initializer.push(int64Tensor(`k${i}`, t.dims, t.values));
    inputs.push(`k${i}`);
  });
  if (c.op === 'LayerNormalization') {
    g.initializer.push(floatTensor('scale', [c.x.at(-1)!], randomValues(c.x.at(-1)!, 3, 0.5, 1.5), dt));
    inputs.push('scale');
  }
  const graph = new Graph(g);
  const outs = Array.from({ length: c.outputs ?? 1 }, (_, k) => `y${k}`);
  graph.addNode({ opType: c.op, inputs, outputs: outs, attrs: c.attrs, name: 'node' });
  for (const o of outs) g.output.push(makeValueInfo(o));
  const proto = create(ModelProtoSchema, { irVersion: 9n, graph: g, opsetImport: [{ domain: '', version: BigInt(c.opset) }] });
  const tensor = (values: number[], dims: readonly number[]) =>
    dt === DT.FLOAT16 ? new ort.Tensor('float16', Uint16Array.from(values, floatToHalfBits), dims) : new ort.Tensor('float32', Float32Array.from(values), dims);
  const feeds: Record<string, ort.Tensor> = { x: tensor(randomValues(numel(c.x), 2), c.x) };
  const shapes = await probeShapes(nodeRuntime, { proto, baseDir: '.' }, { batches: [feeds, feeds] });
  const seeds = new Map<string, string>();
  outs.forEach((o, k) => {
    const dims = shapes.get(o)!.shape as number[];
    g.input.push(makeValueInfo(`${o}_seed`, dt, dims));
    shapes.set(`${o}_seed`, { dtype: dt, shape: dims });
    feeds[`${o}_seed`] = tensor(randomValues(numel(dims), 40 + k), dims);
    seeds.set(o, `${o}_seed`);
  });
  const { grads } = buildGradients({ graph, opset: c.opset, seeds, params: ['x'], shapes });
  const gx = grads.get('x')!;
  g.output.push(makeValueInfo(gx));
  const session = await ort.InferenceSession.create(encodeModel(proto), { executionProviders: ['cpu'] });
  try {
    const data = (await session.run(feeds, [gx]))[gx]!.data as Uint16Array | Float32Array;
    return dt === DT.FLOAT16 ? Array.from(data as Uint16Array, halfBitsToFloat) : Array.from(data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('shape-family rules in float16 (CPU EP)', () => {
  it.each(HALF_CASES.map((c) => [`${c.op}-${c.opset}`, c] as const))('%s runs and matches float32', async (_label, c) => {
    const [half, single] = [await halfGrad(c, DT.FLOAT16), await halfGrad(c, DT.FLOAT)];
    expect(half.length).toBe(single.length);
    const scale = Math.max(1, ...single.map(Math.abs));
    const err = Math.max(...half.map((v, i) => Math.abs(v - single[i]!)));
    expect(err).toBeLessThanOrEqual(1e-2 * scale);
  });
});
