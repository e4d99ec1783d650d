/**
 * The finite-difference cases of the arithmetic, activation, softmax and linear-algebra rules
 * (rules-math.test.ts runs them at the opsets given; rules-opset.test.ts runs them again at the
 * lowest opset each op exists in).
 */
import { float } from '../../src/onnx/attributes.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { randomValues, type GradCheckCase } from '../helpers/gradcheck.ts';

const away0 = (dims: readonly number[]) => randomValues(dims.reduce((a, b) => a * b, 1), 5, -1, 1, [0], 0.05);
const positive = (dims: readonly number[]) => randomValues(dims.reduce((a, b) => a * b, 1), 9, 0.3, 2);

/** Dropout with a fixed mask: Y = X·mask·(training ? 1/(1 − ratio) : 1), mask output = the mask. */
export const DROPOUT_MASK = [true, false, true, true, false, true];
const dropoutComposed: NonNullable<GradCheckCase['composed']> = (b, [x, ratio, tm], [y, mask]) => {
  const m = b.constBool(DROPOUT_MASK, [2, 3]);
  const keep = b.op('Sub', [b.constDouble([1], []), ratio ? ratio : b.constDouble([0.5], [])]);
  const scale = b.op('Where', [tm!, b.op('Reciprocal', [keep]), b.constDouble([1], [])]);
  b.opN('Mul', [b.op('Mul', [x!, b.op('Cast', [m], { to: DT.DOUBLE })]), scale], {}, { outputs: [y!] });
  b.opN('Identity', [m], {}, { outputs: [mask!] });
};

export const MATH_CASES: Array<[string, GradCheckCase]> = [
  // dA = dY, dB = Σ_batch dY  (B broadcast along axis 0 and a leading axis)
  ['Add broadcast', { op: 'Add', inputs: [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [3, 1] }] }],
  ['Add dynamic batch', { op: 'Add', inputs: [{ name: 'a', dims: [2, 3, 4], altDims: [5, 3, 4] }, { name: 'b', dims: [1, 4] }] }],
  ['Sub broadcast', { op: 'Sub', inputs: [{ name: 'a', dims: [4] }, { name: 'b', dims: [2, 3, 4] }] }],
  // dA = dY·B, dB = dY·A
  ['Mul broadcast', { op: 'Mul', inputs: [{ name: 'a', dims: [2, 1, 4] }, { name: 'b', dims: [3, 1] }] }],
  ['Mul same tensor shape, dynamic', { op: 'Mul', inputs: [{ name: 'a', dims: [2, 3], altDims: [4, 5] }, { name: 'b', dims: [2, 3], altDims: [4, 5] }] }],
  ['Mul scalar constant', { op: 'Mul', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [], constant: true, values: [0.7] }] }],
  // dA = dY/B, dB = −dY·A/B²
  ['Div broadcast', { op: 'Div', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [3], values: positive }] }],
  ['Div dynamic', { op: 'Div', inputs: [{ name: 'a', dims: [2, 3], altDims: [3, 3] }, { name: 'b', dims: [1, 3], values: positive }] }],
  ['Neg', { op: 'Neg', inputs: [{ name: 'x', dims: [3, 2], altDims: [5, 2] }] }],
  // dA = dY·p·A^(p−1), exponent constant
  ['Pow square', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3] }, { name: 'p', dims: [], constant: true, values: [2] }] }],
  ['Pow cube', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3] }, { name: 'p', dims: [], constant: true, values: [3] }] }],
  ['Pow one, broadcast exponent shape', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3] }, { name: 'p', dims: [], constant: true, values: [1] }] }],
  ['Pow square root', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3], values: positive }, { name: 'p', dims: [], constant: true, values: [0.5] }] }],
  ['Pow -1.5 constant', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3], values: positive }, { name: 'p', dims: [], constant: true, values: [-1.5] }] }],
  ['Pow float32 square', { op: 'Pow', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 3] }, { name: 'p', dims: [], constant: true, values: [2] }] }],
  ['Pow fractional', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3], values: positive }, { name: 'p', dims: [], constant: true, values: [1.5] }] }],
  ['Pow exponent not trained', { op: 'Pow', inputs: [{ name: 'x', dims: [2, 3], values: positive }, { name: 'p', dims: [3], values: [0.5, 2, 3], grad: false }] }],
  ['Sqrt', { op: 'Sqrt', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3], values: positive }] }],
  ['Reciprocal', { op: 'Reciprocal', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3], values: positive }] }],
  ['Exp', { op: 'Exp', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }] }],
  ['Log', { op: 'Log', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3], values: positive }] }],
  ['Tanh', { op: 'Tanh', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }] }],
  ['Sigmoid', { op: 'Sigmoid', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }] }],
  ['Relu', { op: 'Relu', inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: away0 }] }],
  ['Erf (float32)', { op: 'Erf', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5] }] }],
  ['Gelu none (float32, opset 20)', { op: 'Gelu', opset: 20, dtype: 'float32', inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5], values: (d) => randomValues(d[0]! * d[1]!, 3, -3, 3) }] }],
  ['Gelu tanh (float32, opset 20)', { op: 'Gelu', opset: 20, dtype: 'float32', attrs: { approximate: 'tanh' }, inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5], values: (d) => randomValues(d[0]! * d[1]!, 4, -3, 3) }] }],
  // more activations (float32 kernels only in ORT's CPU EP)
  ['Elu', { op: 'Elu', dtype: 'float32', attrs: { alpha: float(0.7) }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: away0 }] }],
  ['Selu', { op: 'Selu', dtype: 'float32', inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: away0 }] }],
  ['Celu', { op: 'Celu', dtype: 'float32', opset: 17, attrs: { alpha: float(1.5) }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: away0 }] }],
  ['Softplus', { op: 'Softplus', dtype: 'float32', inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4] }] }],
  ['Softsign', { op: 'Softsign', dtype: 'float32', inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: away0 }] }],
  ['HardSigmoid', { op: 'HardSigmoid', dtype: 'float32', attrs: { alpha: float(0.4) }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: (d) => randomValues(d[0]! * d[1]!, 21, -2, 2, [-1.25, 1.25], 0.05) }] }],
  ['HardSwish', { op: 'HardSwish', dtype: 'float32', inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: (d) => randomValues(d[0]! * d[1]!, 22, -5, 5, [-3, 3], 0.05) }] }],
  ['Mish', { op: 'Mish', dtype: 'float32', opset: 18, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: (d) => randomValues(d[0]! * d[1]!, 23, -3, 3) }] }],
  ['PRelu per-channel slope', { op: 'PRelu', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 3, 4], values: (d) => randomValues(d[0]! * d[1]! * d[2]!, 24, -1, 1, [0], 0.05) }, { name: 'slope', dims: [4] }] }],
  ['ThresholdedRelu', { op: 'ThresholdedRelu', dtype: 'float32', attrs: { alpha: float(0.3) }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: (d) => randomValues(d[0]! * d[1]!, 25, -1, 1, [0.3], 0.05) }] }],
  // com.microsoft GELU family (float32 kernels only)
  ['com.microsoft Gelu', { op: 'Gelu', domain: 'com.microsoft', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5], values: (d) => randomValues(d[0]! * d[1]!, 13, -3, 3) }] }],
  ['com.microsoft BiasGelu', { op: 'BiasGelu', domain: 'com.microsoft', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 3, 4] }, { name: 'bias', dims: [4] }] }],
  ['com.microsoft FastGelu with bias', { op: 'FastGelu', domain: 'com.microsoft', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 3, 4] }, { name: 'bias', dims: [4] }] }],
  ['com.microsoft FastGelu, dynamic', { op: 'FastGelu', domain: 'com.microsoft', dtype: 'float32', inputs: [{ name: 'x', dims: [2, 4], altDims: [3, 4] }] }],
  ['com.microsoft QuickGelu', { op: 'QuickGelu', domain: 'com.microsoft', dtype: 'float32', attrs: { alpha: float(1.5) }, inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5], values: (d) => randomValues(d[0]! * d[1]!, 14, -3, 3) }] }],
  // com.microsoft FusedMatMul: Y = α·A'·B'
  ['com.microsoft FusedMatMul 2-D transA transB alpha', { op: 'FusedMatMul', domain: 'com.microsoft', dtype: 'float32', attrs: { transA: 1, transB: 1, alpha: float(0.5) }, inputs: [{ name: 'a', dims: [4, 3] }, { name: 'b', dims: [5, 4] }] }],
  ['com.microsoft FusedMatMul 4-D transB (attention scores), dynamic', { op: 'FusedMatMul', domain: 'com.microsoft', dtype: 'float32', attrs: { transB: 1, alpha: float(0.25) }, inputs: [{ name: 'q', dims: [2, 2, 3, 4], altDims: [1, 2, 5, 4] }, { name: 'k', dims: [2, 2, 3, 4], altDims: [1, 2, 5, 4] }] }],
  ['com.microsoft FusedMatMul 3-D x 2-D transA', { op: 'FusedMatMul', domain: 'com.microsoft', dtype: 'float32', attrs: { transA: 1 }, inputs: [{ name: 'a', dims: [2, 4, 3] }, { name: 'b', dims: [4, 5] }] }],
  // dX = Y·(dY − Σ dY·Y)
  ['Softmax opset 17 axis -1', { op: 'Softmax', inputs: [{ name: 'x', dims: [2, 3, 4] }] }],
  ['Softmax opset 17 axis 1, dynamic', { op: 'Softmax', attrs: { axis: 1 }, inputs: [{ name: 'x', dims: [2, 3, 4], altDims: [3, 3, 5] }] }],
  ['Softmax opset 11 coerced 2-D (axis 1)', { op: 'Softmax', opset: 11, inputs: [{ name: 'x', dims: [2, 3, 4] }] }],
  ['LogSoftmax opset 17', { op: 'LogSoftmax', inputs: [{ name: 'x', dims: [2, 5], altDims: [4, 5] }] }],
  ['LogSoftmax opset 11 axis 1 on 3-D', { op: 'LogSoftmax', opset: 11, attrs: { axis: 1 }, inputs: [{ name: 'x', dims: [2, 3, 2] }] }],
  ['Identity', { op: 'Identity', inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }] }],
  ['Cast float32 -> float64', { op: 'Cast', dtype: 'float32', attrs: { to: 11 }, inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }] }],
  ['Clip inputs', { op: 'Clip', inputs: [{ name: 'x', dims: [3, 4], values: (d) => randomValues(d[0]! * d[1]!, 6, -1, 1, [-0.4, 0.5], 0.05) }, { name: 'lo', dims: [], constant: true, values: [-0.4] }, { name: 'hi', dims: [], constant: true, values: [0.5] }] }],
  ['Clip max only', { op: 'Clip', inputs: [{ name: 'x', dims: [3, 4], values: (d) => randomValues(d[0]! * d[1]!, 7, -1, 1, [0.5], 0.05) }, { name: '', dims: [] }, { name: 'hi', dims: [], constant: true, values: [0.5] }] }],
  ['Max broadcast', { op: 'Max', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [3] }] }],
  ['Min three inputs', { op: 'Min', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [2, 3] }, { name: 'c', dims: [1, 3] }] }],
  ['Where broadcast', { op: 'Where', inputs: [{ name: 'c', dims: [2, 3], type: 'bool', values: [1, 0, 1, 0, 0, 1] }, { name: 'x', dims: [3] }, { name: 'y', dims: [2, 3] }] }],
  ['Dropout inference', { op: 'Dropout', outputs: 1, inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }] }],
  ['Dropout-13 training_mode constant false', { op: 'Dropout', opset: 13, outputs: 2, skipOutputs: [1], inputs: [{ name: 'x', dims: [2, 3], altDims: [4, 3] }, { name: 'ratio', dims: [], constant: true, values: [0.3] }, { name: 'tm', dims: [], type: 'bool', constant: true, values: [0] }] }],
  // Training: Y = X·mask/(1 − ratio) with the node's random mask; the finite differences run a
  // composed forward with a fixed mask (the real kernel draws a new one every run)
  ['Dropout-13 training, ratio 0.25, mask reused (composed forward)', { op: 'Dropout', opset: 13, outputs: 2, skipOutputs: [1], runComposed: true, composed: dropoutComposed, inputs: [{ name: 'x', dims: [2, 3] }, { name: 'ratio', dims: [], constant: true, values: [0.25] }, { name: 'tm', dims: [], type: 'bool', constant: true, values: [1] }] }],
  ['Dropout-12 training, default ratio 0.5 (composed forward)', { op: 'Dropout', opset: 12, outputs: 2, skipOutputs: [1], runComposed: true, composed: dropoutComposed, inputs: [{ name: 'x', dims: [2, 3] }, { name: '', dims: [] }, { name: 'tm', dims: [], type: 'bool', constant: true, values: [1] }] }],
  ['Dropout-13 run-time training_mode and ratio (composed forward)', { op: 'Dropout', opset: 13, outputs: 2, skipOutputs: [1], runComposed: true, composed: dropoutComposed, inputs: [{ name: 'x', dims: [2, 3] }, { name: 'ratio', dims: [], values: [0.4], grad: false }, { name: 'tm', dims: [], type: 'bool', values: [1] }] }],
  // 2-D: dA = dY·Bᵀ, dB = Aᵀ·dY
  ['MatMul 2-D', { op: 'MatMul', inputs: [{ name: 'a', dims: [3, 4] }, { name: 'b', dims: [4, 5] }] }],
  ['MatMul 3-D x 2-D weight, dynamic', { op: 'MatMul', inputs: [{ name: 'a', dims: [2, 3, 4], altDims: [3, 5, 4] }, { name: 'b', dims: [4, 5] }] }],
  ['MatMul frozen 2-D weight', { op: 'MatMul', inputs: [{ name: 'a', dims: [2, 3, 4] }, { name: 'w', dims: [4, 5], constant: true, values: randomValues(20, 11) }] }],
  ['MatMul batched 4-D', { op: 'MatMul', inputs: [{ name: 'a', dims: [2, 2, 3, 4], altDims: [1, 2, 5, 4] }, { name: 'b', dims: [2, 2, 4, 3], altDims: [1, 2, 4, 5] }] }],
  ['MatMul broadcast batch', { op: 'MatMul', inputs: [{ name: 'a', dims: [2, 1, 3, 4] }, { name: 'b', dims: [3, 4, 2] }] }],
  ['MatMul 2-D x 3-D', { op: 'MatMul', inputs: [{ name: 'a', dims: [3, 4] }, { name: 'b', dims: [2, 4, 5] }] }],
  ['MatMul 1-D x 3-D', { op: 'MatMul', inputs: [{ name: 'a', dims: [4] }, { name: 'b', dims: [2, 4, 3] }] }],
  ['MatMul 3-D x 1-D', { op: 'MatMul', inputs: [{ name: 'a', dims: [2, 3, 4] }, { name: 'b', dims: [4] }] }],
  ['MatMul 1-D x 1-D', { op: 'MatMul', inputs: [{ name: 'a', dims: [4] }, { name: 'b', dims: [4] }] }],
  ['Gemm plain with C [N]', { op: 'Gemm', inputs: [{ name: 'a', dims: [3, 4] }, { name: 'b', dims: [4, 5] }, { name: 'c', dims: [5] }] }],
  ['Gemm transA transB alpha beta, C [M,1]', { op: 'Gemm', attrs: { transA: 1, transB: 1, alpha: float(0.7), beta: float(1.3) }, inputs: [{ name: 'a', dims: [4, 3] }, { name: 'b', dims: [5, 4] }, { name: 'c', dims: [3, 1] }] }],
  ['Gemm transA, dynamic M', { op: 'Gemm', attrs: { transA: 1 }, inputs: [{ name: 'a', dims: [4, 3], altDims: [4, 6] }, { name: 'b', dims: [4, 5] }] }],
  ['Gemm opset 9 (C required), transB', { op: 'Gemm', opset: 9, attrs: { transB: 1 }, inputs: [{ name: 'a', dims: [3, 4] }, { name: 'b', dims: [5, 4] }, { name: 'c', dims: [5] }] }],
  ['Clip opset 10 (min/max attributes, float32)', { op: 'Clip', opset: 10, dtype: 'float32', attrs: { min: float(-0.4), max: float(0.5) }, inputs: [{ name: 'x', dims: [3, 4], altDims: [5, 4], values: (d) => randomValues(d[0]! * d[1]!, 8, -1, 1, [-0.4, 0.5], 0.05) }] }],
  ['Gemm transB, scalar C', { op: 'Gemm', attrs: { transB: 1, alpha: float(2) }, inputs: [{ name: 'a', dims: [3, 4] }, { name: 'b', dims: [5, 4] }, { name: 'c', dims: [] }] }],
];
