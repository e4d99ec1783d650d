/**
 * Tiny models built in code for the injection tests, and a plain reference implementation of
 * the tweaker math on number[][] matrices (independent of src/peanut's JS merge path).
 */
import type { Feeds } from '../../src/runtime/session.ts';
import { create, ModelProtoSchema, OperatorSetIdProtoSchema, GraphProtoSchema } from '../../src/onnx/proto.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { encodeModel, type OnnxModel } from '../../src/onnx/model.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { Random } from '../../src/util/random.ts';

export type Mat = number[][];

/** A model whose graph `build` fills; inputs/outputs are float tensors with the given dims. */
export function tinyModel(
  inputs: Array<[string, Array<number | string>, number?]>,
  outputs: string[],
  build: (b: GraphBuilder, g: Graph) => void,
  opset = 17,
): OnnxModel {
  const gp = create(GraphProtoSchema, { name: 'tiny' });
  const g = new Graph(gp);
  for (const [name, dims, type] of inputs) {
    gp.input.push(makeValueInfo(name, type ?? DT.FLOAT, dims));
    g.reserve(name);
  }
  build(new GraphBuilder(g, ''), g);
  for (const o of outputs) gp.output.push(makeValueInfo(o));
  const proto = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'test',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
    graph: gp,
  });
  return { proto, baseDir: process.cwd() };
}

export function randomMat(rows: number, cols: number, seed: number, scale = 1): Mat {
  const rng = new Random(seed);
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.uniform(-scale, scale)));
}

export const flat = (m: Mat): Float32Array => Float32Array.from(m.flat());
export const T = (m: Mat): Mat => m[0]!.map((_, j) => m.map((row) => row[j]!));
export const matmul = (a: Mat, b: Mat): Mat => a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
export const add = (a: Mat, b: Mat): Mat => a.map((row, i) => row.map((v, j) => v + b[i]![j]!));
export const map = (a: Mat, f: (x: number) => number): Mat => a.map((row) => row.map(f));

/** Reference activations (erf via a high-order series, independent of src). */
function erfRef(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; integrate exp(-t²) with Simpson's rule instead.
  const n = 2000;
  const h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return ((2 / Math.sqrt(Math.PI)) * s * h) / 3;
}
export const ACT_REF: Record<string, (x: number) => number> = {
  relu: (x) => Math.max(0, x),
  gelu: (x) => 0.5 * x * (1 + erfRef(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  silu: (x) => x / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
};

/** DESIGN.md §1, literally: W0 [in,out]; A [r,out]; enc/dec [r,r]; B [out,r]. */
export function peanutDeltaRef(w0: Mat, A: Mat, enc: Mat[], dec: Mat[], B: Mat, act: string, scaling: number): Mat {
  const f = ACT_REF[act]!;
  let h = map(matmul(w0, T(A)), f);
  const res: Mat[] = [];
  for (const e of enc) {
    res.push(h);
    h = map(matmul(h, T(e)), f);
  }
  dec.forEach((d, i) => {
    h = add(map(matmul(h, T(d)), f), res[enc.length - 1 - i]!);
  });
  return map(matmul(h, T(B)), (v) => v * scaling);
}

/** Runs a model with float inputs; returns every output by name. */
export async function runModel(model: OnnxModel, feeds: Record<string, [Float32Array, number[]]>): Promise<Record<string, Float32Array>> {
  const { session } = await createSession(encodeModel(model.proto), { ep: 'cpu' });
  try {
    const f: Feeds = {};
    for (const [k, [data, dims]] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', data, dims);
    const out = await session.run(f);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}
