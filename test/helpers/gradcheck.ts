/**
 * Finite-difference gradient checks through onnxruntime. A tiny graph wraps one op (its inputs
 * are graph inputs, or initializers for constant inputs such as axes); the backward graph is
 * built with the project's builder as a vector-Jacobian product with fixed random output weights
 * R_k (L = Σ_k Σ O_k·R_k, summed in float64 in JS, so no loss op is on the gradient path), run in
 * ORT, and compared with central differences of L computed by running the forward graph in ORT.
 *
 * Float64 where ORT implements the op for doubles (tight tolerances), else float32 with looser,
 * stated ones. A case may give alternative dims: inputs are then declared with symbolic dims where
 * the two sets differ, shapes are probed at both, and the check runs at both sizes with the same
 * graph, which proves the rule keeps dynamic axes dynamic.
 *
 *   const r = await gradCheck({ op: 'Mul', inputs: [{ name: 'a', dims: [2, 3] }, { name: 'b', dims: [3] }] });
 *   expect(r.maxErr).toBeLessThanOrEqual(r.tolerance);
 *
 * A case may also give `composed`, the op written in standard ops. With `runComposed` (for ops
 * onnxruntime has no CPU kernel for, or a random one such as Dropout in training mode) that
 * subgraph stands in for the node wherever a model is run (finite differences, shape probing,
 * the backward run), while the gradient is still built by the op's own rule from its own node.
 * `vjpCompare` runs the rule's gradient against the gradient of the composed graph (built by the
 * standard-op rules): the equivalence check for fused ops.
 */
import type { TensorLike } from '../../src/runtime/session.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { create, GraphProtoSchema, ModelProtoSchema, type ModelProto } from '../../src/onnx/proto.ts';
import { encodeModel, type OnnxModel } from '../../src/onnx/model.ts';
import { makeTensor } from '../../src/onnx/tensor.ts';
import type { AttrValue } from '../../src/onnx/attributes.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { probeShapes } from '../../src/runtime/probe.ts';
import { type Feeds } from '../../src/runtime/tensors.ts';
import { buildGradients } from '../../src/autodiff/gradient.ts';
import type { GradRegistry } from '../../src/autodiff/registry.ts';

export type CheckDtype = 'float32' | 'float64';

export interface GradCheckInput {
  /** Input name; '' for an absent optional input. */
  name: string;
  dims: number[];
  /** Alternative dims for the dynamic-shape run (needs `altDims` on every input that changes). */
  altDims?: number[];
  /** Element type: the case's float type by default; 'int64' / 'int32' / 'bool' for indices and masks. */
  type?: CheckDtype | 'int64' | 'int32' | 'bool' | 'float32';
  /**
   * Values (default: uniform in [-1, 1], seeded). A function gets the dims and whether this is
   * the run at the alternative dims (for values that depend on other inputs' sizes).
   */
  values?: readonly number[] | ((dims: readonly number[], alt: boolean) => number[]);
  /** An initializer (constant input: axes, shapes, frozen weights) instead of a graph input. */
  constant?: boolean;
  /** Whether to check this input's gradient (default: float, non-constant inputs). */
  grad?: boolean;
}

export interface GradCheckCase {
  op: string;
  domain?: string;
  attrs?: Record<string, AttrValue | undefined>;
  inputs: GradCheckInput[];
  /** Number of outputs (default 1); `null` entries in `skipOutputs` are not weighted. */
  outputs?: number;
  /** Output indices that get no weight (e.g. an int mask output). */
  skipOutputs?: number[];
  /**
   * Scales the random output weights R_k elementwise (e.g. 0 where an output holds a constant
   * sentinel that would swamp the finite differences): output index and dims → factors.
   */
  weightScale?: (output: number, dims: readonly number[]) => number[];
  /** Declare the outputs with the case's float type (for ops whose output type ONNX Runtime cannot infer). */
  typedOutputs?: boolean;
  /** Default 'float64'. */
  dtype?: CheckDtype;
  /** Default 17. */
  opset?: number;
  /** Finite-difference step (default 1e-6 for float64, 1e-2 for float32). */
  eps?: number;
  /** Error allowed: atol + rtol·max|numeric| (defaults 1e-6/1e-6 for float64, 2e-3/2e-3 for float32). */
  atol?: number;
  rtol?: number;
  /** Check at most this many elements per input (default 48, evenly spread). */
  maxElements?: number;
  seed?: number;
  registry?: GradRegistry;
  /**
   * The op in standard ONNX ops: emits nodes through `b` computing `outputs` (Y0…, exact names:
   * use `b.opN(…, { outputs: [name] })`) from `inputs` (the case's input names, '' where absent).
   */
  composed?: (b: GraphBuilder, inputs: string[], outputs: string[]) => void;
  /** Run `composed` in place of the node (the op has no usable ORT kernel). */
  runComposed?: boolean;
}

export interface GradCheckRun {
  /** max |analytic − numeric| over checked elements, per input. */
  perInput: Record<string, { maxErr: number; maxNumeric: number; checked: number }>;
  maxErr: number;
  maxNumeric: number;
  /** atol + rtol·maxNumeric */
  tolerance: number;
}

export interface GradCheckResult extends GradCheckRun {
  /** The run at the alternative dims, when the case has them. */
  alt?: GradCheckRun;
  /** Backward node op types, for structure assertions. */
  backwardOps: string[];
  /** Default-domain opset the backward graph was built for (raised from the case's, if needed). */
  opset: number;
}

/** Seeded uniform values in [lo, hi], optionally kept at least `gap` away from `kinks`. */
export function randomValues(n: number, seed: number, lo = -1, hi = 1, kinks: readonly number[] = [], gap = 0.05): number[] {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const out: number[] = [];
  while (out.length < n) {
    const v = lo + (hi - lo) * next();
    if (kinks.every((k) => Math.abs(v - k) > gap)) out.push(v);
  }
  return out;
}

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function ortTensor(type: string, values: readonly number[], dims: readonly number[]): TensorLike {
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(values), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(values), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(values), dims);
    case 'bool':
      return new ort.Tensor('bool', Uint8Array.from(values, (v) => (v ? 1 : 0)), dims);
    default:
      throw new Error(`gradcheck: unsupported type ${type}`);
  }
}

const DT_OF: Record<string, number> = { float32: DT.FLOAT, float64: DT.DOUBLE, int64: DT.INT64, int32: DT.INT32, bool: DT.BOOL };

function tensorBytes(type: string, values: readonly number[]): Uint8Array {
  const t = ortTensor(type, values, [values.length]);
  const d = t.data as ArrayBufferView;
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

/**
 * The one-op model: inputs (graph inputs or initializers), the node, its outputs. Dims that
 * differ between `dims` and `altDims` are symbolic.
 */
export function buildOpModel(c: GradCheckCase, valuesOf: (inp: GradCheckInput, dims: readonly number[]) => number[]): ModelProto {
  const dtype = c.dtype ?? 'float64';
  const g = create(GraphProtoSchema, { name: `gradcheck_${c.op}` });
  const nOut = c.outputs ?? 1;
  const outs = Array.from({ length: nOut }, (_, k) => `Y${k}`);
  for (const inp of c.inputs) {
    const type = inp.type ?? dtype;
    if (inp.name === '') continue; // an absent optional input
    if (inp.constant) {
      g.initializer.push(makeTensor(inp.name, DT_OF[type]!, inp.dims, tensorBytes(type, valuesOf(inp, inp.dims))));
    } else {
      const dims = inp.dims.map((d, i) => (inp.altDims && inp.altDims[i] !== d ? `${inp.name}_d${i}` : d));
      g.input.push(makeValueInfo(inp.name, DT_OF[type]!, dims));
    }
  }
  const graph = new Graph(g);
  graph.addNode({ opType: c.op, domain: c.domain, inputs: c.inputs.map((i) => i.name), outputs: outs, attrs: c.attrs, name: `node_${c.op}` });
  for (const o of outs) g.output.push(c.typedOutputs ? makeValueInfo(o, DT_OF[dtype]!) : makeValueInfo(o));
  // The types also as value_info, so graphs that drop these outputs (the backward graph) keep them.
  if (c.typedOutputs) for (const o of outs) g.valueInfo.push(makeValueInfo(o, DT_OF[dtype]!));
  const opset = c.opset ?? 17;
  const opsetImport = [{ domain: '', version: BigInt(opset) }];
  if (c.domain) opsetImport.push({ domain: c.domain, version: 1n });
  // Opsets 23 and later need IR version 11.
  return create(ModelProtoSchema, { irVersion: opset >= 23 ? 11n : 10n, producerName: 'gradcheck', graph: g, opsetImport });
}

/**
 * A copy of `proto` in which the case's node is replaced by its `composed` subgraph (same input
 * and output names), so onnxruntime can run it; `proto` itself is unchanged.
 */
export function withComposed(proto: ModelProto, c: GradCheckCase): ModelProto {
  if (!c.composed) throw new Error(`gradcheck ${c.op}: the case has no composed form`);
  const g = create(GraphProtoSchema, { ...proto.graph!, node: [...proto.graph!.node], initializer: [...proto.graph!.initializer] });
  const at = g.node.findIndex((n) => n.name === `node_${c.op}`);
  if (at < 0) throw new Error(`gradcheck ${c.op}: node_${c.op} not found`);
  const [node] = g.node.splice(at, 1);
  const graph = new Graph(g);
  c.composed(new GraphBuilder(graph, '/composed', g.node[at]), [...node!.input], [...node!.output]);
  return create(ModelProtoSchema, { ...proto, graph: g });
}

/** Runs a finite-difference check of the gradient rule(s) for one op. */
export async function gradCheck(c: GradCheckCase): Promise<GradCheckResult> {
  const dtype = c.dtype ?? 'float64';
  const f64 = dtype === 'float64';
  const eps = c.eps ?? (f64 ? 1e-6 : 1e-2);
  const atol = c.atol ?? (f64 ? 1e-6 : 2e-3);
  const rtol = c.rtol ?? (f64 ? 1e-6 : 2e-3);
  const seed = c.seed ?? 1;
  const valuesOf = (inp: GradCheckInput, dims: readonly number[], alt = false): number[] => {
    if (typeof inp.values === 'function') return inp.values(dims, alt);
    if (inp.values) return [...inp.values];
    return randomValues(numel(dims), seed + [...inp.name].reduce((a, ch) => a * 31 + ch.charCodeAt(0), 7));
  };
  const fwdProto = buildOpModel(c, valuesOf);
  const nOut = c.outputs ?? 1;
  const weighted = Array.from({ length: nOut }, (_, k) => k).filter((k) => !c.skipOutputs?.includes(k));
  const gradInputs = c.inputs.filter((i) => i.name !== '' && (i.grad ?? (!i.constant && (i.type ?? dtype) === dtype)));

  const runnable = (p: ModelProto) => (c.runComposed ? withComposed(p, c) : p);
  const { session: fwd } = await createSession(encodeModel(runnable(fwdProto)), { memPattern: false, graphOptimizationLevel: 'disabled' });

  const feedsAt = (alt: boolean) => {
    const feeds: Record<string, number[]> = {};
    const dims: Record<string, number[]> = {};
    for (const inp of c.inputs) {
      if (inp.constant || inp.name === '') continue;
      const d = alt && inp.altDims ? inp.altDims : inp.dims;
      dims[inp.name] = d;
      feeds[inp.name] = valuesOf(inp, d, alt);
    }
    return { feeds, dims };
  };
  const toFeeds = (vals: Record<string, number[]>, dims: Record<string, number[]>): Feeds => {
    const out: Feeds = {};
    for (const inp of c.inputs) if (!inp.constant && inp.name !== '') out[inp.name] = ortTensor(inp.type ?? dtype, vals[inp.name]!, dims[inp.name]!);
    return out;
  };

  // Output weights R_k, fixed per run size.
  const outputsAt = async (vals: Record<string, number[]>, dims: Record<string, number[]>) => {
    const r = await fwd.run(toFeeds(vals, dims));
    return weighted.map((k) => r[`Y${k}`] as ort.Tensor);
  };
  const hasAlt = c.inputs.some((i) => i.altDims);
  const runs = [feedsAt(false), ...(hasAlt ? [feedsAt(true)] : [])];
  const weights: Array<Array<{ values: number[]; dims: number[] }>> = [];
  for (const [ri, run] of runs.entries()) {
    const outs = await outputsAt(run.feeds, run.dims);
    weights.push(
      outs.map((o, j) => {
        const dims = o.dims.map(Number);
        const values = randomValues(o.data.length, 1000 + 17 * ri + j, -1, 1);
        const f = c.weightScale?.(weighted[j]!, dims);
        return { values: f ? values.map((v, i) => v * f[i]!) : values, dims };
      }),
    );
  }
  const loss = async (vals: Record<string, number[]>, dims: Record<string, number[]>, w: Array<{ values: number[] }>) => {
    const outs = await outputsAt(vals, dims);
    let s = 0;
    outs.forEach((o, j) => {
      const data = o.data as Float32Array | Float64Array;
      const r = w[j]!.values;
      for (let i = 0; i < data.length; i++) s += data[i]! * r[i]!;
    });
    return s;
  };

  // Gradient graph: same node, seeds R_k as graph inputs.
  const gradProto = create(ModelProtoSchema, { ...fwdProto, graph: create(GraphProtoSchema, { ...fwdProto.graph!, node: [...fwdProto.graph!.node], initializer: [...fwdProto.graph!.initializer], input: [...fwdProto.graph!.input], output: [] }) });
  const gg = gradProto.graph!;
  const seeds = new Map<string, string>();
  for (const k of weighted) {
    gg.input.push(makeValueInfo(`R${k}`, DT_OF[dtype]!, weights[0]![weighted.indexOf(k)]!.dims.map((d, i) => (hasAlt ? `R${k}_d${i}` : d))));
    seeds.set(`Y${k}`, `R${k}`);
  }
  const model: OnnxModel = { proto: runnable(gradProto), baseDir: '.' };
  const probeBatches = runs.map((run, ri) => {
    const f = toFeeds(run.feeds, run.dims);
    weighted.forEach((k, j) => (f[`R${k}`] = ortTensor(dtype, weights[ri]![j]!.values, weights[ri]![j]!.dims)));
    return f;
  });
  // The probe needs every graph input, so R_k is declared before probing.
  const shapes = await probeShapes(nodeRuntime, model, { batches: hasAlt ? probeBatches : [probeBatches[0]!, probeBatches[0]!] });
  const graph = new Graph(gg);
  const built = buildGradients({
    graph,
    opset: c.opset ?? 17,
    seeds,
    params: gradInputs.map((i) => i.name),
    shapes,
    ...(c.registry ? { registry: c.registry } : {}),
  });
  const { grads, backwardNodes } = built;
  const usedOpset = built.opset;
  setDefaultOpset(gradProto, usedOpset);
  for (const i of gradInputs) gg.output.push(makeValueInfo(grads.get(i.name)!));
  const { session: bwd } = await createSession(encodeModel(runnable(gradProto)), { memPattern: false, graphOptimizationLevel: 'disabled' });

  const check = async (ri: number): Promise<GradCheckRun> => {
    const run = runs[ri]!;
    const analytic = await bwd.run(probeBatches[ri]!);
    const perInput: GradCheckRun['perInput'] = {};
    for (const inp of gradInputs) {
      const a = analytic[grads.get(inp.name)!] as ort.Tensor;
      const aData = a.data as Float32Array | Float64Array;
      const x = run.feeds[inp.name]!;
      if (aData.length !== x.length) throw new Error(`gradcheck ${c.op}: gradient of '${inp.name}' has ${aData.length} elements, input has ${x.length} (dims ${a.dims.join('x')} vs ${run.dims[inp.name]!.join('x')})`);
      const n = x.length;
      const budget = c.maxElements ?? 48;
      const step = Math.max(1, Math.floor(n / budget));
      let maxErr = 0;
      let maxNumeric = 0;
      let checked = 0;
      for (let e = 0; e < n; e += step) {
        const orig = x[e]!;
        const h = eps * Math.max(1, Math.abs(orig));
        x[e] = orig + h;
        const lp = await loss(run.feeds, run.dims, weights[ri]!);
        x[e] = orig - h;
        const lm = await loss(run.feeds, run.dims, weights[ri]!);
        x[e] = orig;
        // The perturbation actually applied, after rounding to the input's precision.
        const hp = f64 ? h : Math.fround(orig + h) - Math.fround(orig - h);
        const numeric = (lp - lm) / (f64 ? 2 * h : hp);
        maxErr = Math.max(maxErr, Math.abs(numeric - aData[e]!));
        maxNumeric = Math.max(maxNumeric, Math.abs(numeric));
        checked++;
      }
      perInput[inp.name] = { maxErr, maxNumeric, checked };
    }
    const maxErr = Math.max(0, ...Object.values(perInput).map((p) => p.maxErr));
    const maxNumeric = Math.max(0, ...Object.values(perInput).map((p) => p.maxNumeric));
    return { perInput, maxErr, maxNumeric, tolerance: atol + rtol * maxNumeric };
  };
  try {
    const main = await check(0);
    const alt = hasAlt ? await check(1) : undefined;
    return { ...main, ...(alt ? { alt } : {}), backwardOps: backwardNodes.map((n) => n.opType), opset: usedOpset };
  } finally {
    await fwd.release();
    await bwd.release();
  }
}

/** Sets the default-domain opset a model imports. */
function setDefaultOpset(proto: ModelProto, opset: number): void {
  const e = proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (e) e.version = BigInt(opset);
}

export interface VjpComparison {
  /** max |rule − composed| over every element of every input's gradient, per input. */
  perInput: Record<string, { maxDiff: number; maxAbs: number }>;
  maxDiff: number;
  maxAbs: number;
  /** max |fused − composed| over the forward outputs (when the fused op was run by its kernel). */
  forwardDiff?: number;
}

/**
 * The equivalence check of a fused op: the vector-Jacobian product of the op's rule against the
 * one of its `composed` graph (differentiated by the standard-op rules), for the same inputs and
 * output weights, and, where the op has an ORT kernel (no `runComposed`), its outputs against the
 * composed outputs.
 */
export async function vjpCompare(c: GradCheckCase): Promise<VjpComparison> {
  const dtype = c.dtype ?? 'float64';
  const seed = c.seed ?? 1;
  const valuesOf = (inp: GradCheckInput, dims: readonly number[]): number[] => {
    if (typeof inp.values === 'function') return inp.values(dims, false);
    if (inp.values) return [...inp.values];
    return randomValues(numel(dims), seed + [...inp.name].reduce((a, ch) => a * 31 + ch.charCodeAt(0), 7));
  };
  const fused = buildOpModel({ ...c, inputs: c.inputs.map(({ altDims: _, ...i }) => i) }, valuesOf);
  const composed = withComposed(fused, c);
  const nOut = c.outputs ?? 1;
  const weighted = Array.from({ length: nOut }, (_, k) => k).filter((k) => !c.skipOutputs?.includes(k));
  const gradInputs = c.inputs.filter((i) => i.name !== '' && (i.grad ?? (!i.constant && (i.type ?? dtype) === dtype)));
  const feeds: Feeds = {};
  for (const inp of c.inputs) if (!inp.constant && inp.name !== '') feeds[inp.name] = ortTensor(inp.type ?? dtype, valuesOf(inp, inp.dims), inp.dims);
  const run = async (p: ModelProto, f: Feeds) => {
    const { session } = await createSession(encodeModel(p), { memPattern: false, graphOptimizationLevel: 'disabled' });
    try {
      return await session.run(f);
    } finally {
      await session.release();
    }
  };
  const outs = await run(composed, feeds);
  let forwardDiff: number | undefined;
  if (!c.runComposed) {
    const fusedOuts = await run(fused, feeds);
    forwardDiff = Math.max(0, ...weighted.map((k) => maxAbsDiff(fusedOuts[`Y${k}`]!.data as Float64Array, outs[`Y${k}`]!.data as Float64Array)));
  }
  const seedFeeds: Feeds = {};
  weighted.forEach((k, j) => {
    const y = outs[`Y${k}`] as ort.Tensor;
    seedFeeds[`R${k}`] = ortTensor(dtype, randomValues(y.data.length, 2000 + j, -1, 1), y.dims);
  });
  const gradientOf = async (forward: ModelProto, runForward: (p: ModelProto) => ModelProto, spelledOps: boolean) => {
    const p = create(ModelProtoSchema, { ...forward, graph: create(GraphProtoSchema, { ...forward.graph!, node: [...forward.graph!.node], initializer: [...forward.graph!.initializer], input: [...forward.graph!.input], output: [] }) });
    const seeds = new Map<string, string>();
    for (const k of weighted) {
      p.graph!.input.push(makeValueInfo(`R${k}`, DT_OF[dtype]!, (seedFeeds[`R${k}`] as ort.Tensor).dims.map(Number)));
      seeds.set(`Y${k}`, `R${k}`);
    }
    const all = { ...feeds, ...seedFeeds };
    const shapes = await probeShapes(nodeRuntime, { proto: runForward(p), baseDir: '.' }, { batches: [all, all] });
    // Inputs that do not reach a weighted output (β when only a statistic is used) get zeros.
    const reaches = (name: string) => {
      const probe = new Graph(create(GraphProtoSchema, { ...p.graph!, node: [...p.graph!.node] }));
      try {
        buildGradients({ graph: probe, opset: c.opset ?? 17, seeds, params: [name], shapes, checkOnly: true });
        return true;
      } catch (err) {
        if (/does not reach/.test((err as Error).message)) return false;
        throw err;
      }
    };
    const params = gradInputs.filter((i) => reaches(i.name)).map((i) => i.name);
    const graph = new Graph(p.graph!);
    const built = buildGradients({ graph, opset: c.opset ?? 17, seeds, params, shapes, spelledOps });
    setDefaultOpset(p, built.opset);
    for (const name of params) p.graph!.output.push(makeValueInfo(built.grads.get(name)!));
    const r = await run(runForward(p), all);
    return new Map(
      gradInputs.map((i) => [i.name, params.includes(i.name) ? (r[built.grads.get(i.name)!]!.data as Float64Array) : new Float64Array(numel((feeds[i.name] as ort.Tensor).dims as number[]))]),
    );
  };
  const viaRule = await gradientOf(fused, (p) => (c.runComposed ? withComposed(p, c) : p), true);
  // Node by node: a composed LayerNorm is not differentiated as the op it spells (patterns.ts),
  // so the comparison stays one between independent derivations.
  const viaComposed = await gradientOf(composed, (p) => p, false);
  const perInput: VjpComparison['perInput'] = {};
  for (const i of gradInputs) {
    const a = viaRule.get(i.name)!;
    const b = viaComposed.get(i.name)!;
    perInput[i.name] = { maxDiff: maxAbsDiff(a, b), maxAbs: Math.max(0, ...Array.from(b, Math.abs)) };
  }
  const maxDiff = Math.max(0, ...Object.values(perInput).map((p) => p.maxDiff));
  const maxAbs = Math.max(0, ...Object.values(perInput).map((p) => p.maxAbs));
  return { perInput, maxDiff, maxAbs, ...(forwardDiff !== undefined ? { forwardDiff } : {}) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`gradcheck: ${a.length} elements vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
