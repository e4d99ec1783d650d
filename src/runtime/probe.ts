/**
 * Shape probing: gradient rules need the rank, element type and static dims of every value on the
 * gradient path. Rather than re-implementing ONNX shape inference, we ask onnxruntime: a copy of
 * the model lists every intermediate value as a graph output and runs on two synthetic batches in
 * which each symbolic input dim has a different size. A dim equal across both runs is static;
 * one that differs is dynamic (`null`), and rules must not bake it into constants.
 */
import { PeanutError } from '../errors.ts';
import { DataType as DT, dtypeName, floatToBf16Bits, floatToHalfBits } from '../onnx/dtype.ts';
import { graphOf, encodeModel, type OnnxModel } from '../onnx/model.ts';
import type { ModelProto, TensorProto, ValueInfoProto } from '../onnx/proto.ts';
import { makeValueInfo, valueInfoType } from '../onnx/graph.ts';
import { tensorDims } from '../onnx/tensor.ts';
import type { Runtime } from './session.ts';
import { withWeightsAsFills } from './light-copy.ts';
import { dtypeOfOrtType, elemTypeOf, type Feeds, type HostTensor } from './tensors.ts';
import type { ShapeTable, ValueShape } from '../onnx/shapes.ts';

export interface ProbeOptions {
  /**
   * Real batches to probe with. One batch: a second, synthetic run with different sizes is added
   * so dynamic axes are still told apart. Two or more: used as given. None: two synthetic runs.
   */
  batches?: Feeds[];
  /** Sizes for the first and second synthetic run's symbolic dims (default 2,3,4,… and 3,5,7,…). */
  sizes?: [number[], number[]];
  /** Values for synthetic int inputs, by input name (default: 0, or 1 for names containing `mask`). */
  intFill?: (input: string) => number;
}

/** Graph inputs that must be fed (initializers listed as inputs by old exporters excluded). */
export function feedInputs(proto: ModelProto): ValueInfoProto[] {
  const g = proto.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  return g.input.filter((v) => !inits.has(v.name));
}

/** Deterministic small values for synthetic float inputs. */
function pseudoRandom(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** A synthetic tensor of the given element type and dims. */
export function syntheticTensor(name: string, dt: number, dims: readonly number[], intFill: (input: string) => number, seed = 7): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (dt) {
    case DT.FLOAT:
      return { type: 'float32', data: pseudoRandom(n, seed), dims };
    case DT.DOUBLE:
      return { type: 'float64', data: Float64Array.from(pseudoRandom(n, seed)), dims };
    // Half precision travels as raw 16-bit words (onnxruntime's float16/bfloat16 host tensors).
    case DT.FLOAT16:
      return { type: 'float16', data: Uint16Array.from(pseudoRandom(n, seed), (v) => floatToHalfBits(v)), dims };
    case DT.BFLOAT16:
      return { type: 'bfloat16', data: Uint16Array.from(pseudoRandom(n, seed), (v) => floatToBf16Bits(v)), dims };
    case DT.INT64:
      return { type: 'int64', data: new BigInt64Array(n).fill(BigInt(intFill(name))), dims };
    case DT.INT32:
      return { type: 'int32', data: new Int32Array(n).fill(intFill(name)), dims };
    case DT.BOOL:
      return { type: 'bool', data: new Uint8Array(n).fill(intFill(name) ? 1 : 0), dims };
    case DT.UINT8:
      return { type: 'uint8', data: new Uint8Array(n).fill(intFill(name)), dims };
    default:
      throw new PeanutError('E_DTYPE', `cannot synthesize a probe value for input '${name}' of type ${dtypeName(dt)}; probe with two real batches of different sizes`);
  }
}

const defaultIntFill = (input: string) => (/mask/i.test(input) ? 1 : 0);

/** Synthetic feeds for every graph input, symbolic dims sized from `sizes` in order of appearance. */
export function syntheticFeeds(proto: ModelProto, sizes: readonly number[], intFill: (input: string) => number = defaultIntFill): Feeds {
  const symbols = new Map<string, number>();
  const sizeOf = (sym: string) => {
    let s = symbols.get(sym);
    if (s === undefined) {
      s = sizes[symbols.size] ?? sizes[sizes.length - 1]! + symbols.size;
      symbols.set(sym, s);
    }
    return s;
  };
  const feeds: Feeds = {};
  for (const v of feedInputs(proto)) {
    const t = valueInfoType(v);
    if (!t) throw new PeanutError('E_GRAPH', `graph input '${v.name}' has no tensor type; pass a real batch to probe shapes`);
    const dims = (t.dims ?? []).map((d, axis) => (typeof d === 'number' && d >= 0 ? d : sizeOf(typeof d === 'string' && d ? d : `${v.name}:${axis}`)));
    feeds[v.name] = syntheticTensor(v.name, t.elemType, dims, intFill);
  }
  return feeds;
}

/** Ops whose outputs are sequences or optionals, which are not fetched as probe outputs. */
const NON_TENSOR_OPS = new Set(['SplitToSequence', 'SequenceConstruct', 'SequenceInsert', 'SequenceErase', 'SequenceEmpty', 'SequenceMap', 'Optional', 'OptionalGetElement']);

/**
 * Runs `model` with every node output fetched and returns the shapes of all values.
 *
 * @param model - the model (not modified)
 * @param opts - real batches or synthetic sizes
 */
export async function probeShapes(runtime: Runtime, model: OnnxModel, opts: ProbeOptions = {}): Promise<ShapeTable> {
  const g = graphOf(model);
  const outputs = new Set(g.output.map((v) => v.name));
  const known = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  const extra: ValueInfoProto[] = [];
  for (const n of g.node) {
    if (NON_TENSOR_OPS.has(n.opType)) continue;
    for (const o of n.output) {
      if (!o || outputs.has(o) || known.has(o)) continue;
      outputs.add(o);
      extra.push(makeValueInfo(o));
    }
  }
  const light = withWeightsAsFills(model, extra);
  const probeProto = light.proto;
  const bytes = encodeModel(probeProto);
  const files = light.externalData;
  const session = await runtime.createSession(bytes, {
    ep: runtime.cpuEp,
    memPattern: false,
    graphOptimizationLevel: 'disabled',
    ...(files.length ? { externalData: files } : {}),
  });
  const sizes = opts.sizes ?? [
    [2, 3, 4, 5, 6, 7, 8, 9],
    [3, 5, 7, 9, 11, 13, 15, 17],
  ];
  let batches: Feeds[];
  if (opts.batches && opts.batches.length >= 2) batches = opts.batches;
  else if (opts.batches && opts.batches.length === 1) {
    const real = opts.batches[0]!;
    // A synthetic run whose sizes differ from every real dim, so dynamic axes show up.
    const maxDim = Math.max(1, ...Object.values(real).flatMap((t) => t.dims.map(Number)));
    batches = [real, syntheticFeeds(probeProto, [maxDim + 1, maxDim + 2, maxDim + 3, maxDim + 4], opts.intFill)];
  } else {
    batches = [syntheticFeeds(probeProto, sizes[0], opts.intFill), syntheticFeeds(probeProto, sizes[1], opts.intFill)];
  }
  const fetch = [...outputs];
  const runs: Array<Map<string, { dtype: number; dims: number[] }>> = [];
  try {
    const inputNames = new Set(session.inputNames);
    for (const [k, given] of batches.entries()) {
      // A real batch may carry fields the model does not take (text, ids of other models).
      const feeds: Feeds = Object.fromEntries(Object.entries(given).filter(([name]) => inputNames.has(name)));
      let result: Record<string, HostTensor>;
      try {
        result = await session.run(feeds, fetch);
      } catch (err) {
        const why = (err as Error).message.split('\n')[0];
        // Given batches are the caller's to fix; a synthetic one means the model needs real inputs.
        const given = opts.batches !== undefined && k < opts.batches.length;
        throw new PeanutError(
          'E_PROBE',
          given
            ? `shape probing failed: onnxruntime could not run the model on the given batch ${k + 1} (${why}); check that batch's inputs against the model's`
            : `shape probing failed: onnxruntime could not run the model on a synthetic batch (${why}); ${opts.batches?.length ? 'probe with two real batches of different sizes, or with the given batch alone (static shapes)' : 'pass a real batch'}`,
        );
      }
      const m = new Map<string, { dtype: number; dims: number[] }>();
      for (const [name, t] of Object.entries(result)) {
        const dtype = elemTypeOf(t.type);
        if (dtype !== undefined) m.set(name, { dtype, dims: t.dims.map(Number) });
      }
      for (const [name, t] of Object.entries(feeds)) m.set(name, { dtype: dtypeOfOrtType(t.type), dims: t.dims.map(Number) });
      runs.push(m);
    }
  } finally {
    await session.release();
  }
  const table: ShapeTable = new Map();
  for (const t of g.initializer) table.set(t.name, initializerShape(t));
  const first = runs[0]!;
  for (const [name, r0] of first) {
    const shape: Array<number | null> = [...r0.dims];
    for (const r of runs.slice(1)) {
      const other = r.get(name);
      if (!other || other.dims.length !== shape.length) {
        throw new PeanutError('E_GRAPH', `value '${name}' changes rank between probe runs; dynamic ranks are not supported`);
      }
      other.dims.forEach((d, i) => {
        if (shape[i] !== d) shape[i] = null;
      });
    }
    const samples = shape.includes(null) ? runs.map((r) => r.get(name)!.dims) : undefined;
    table.set(name, { dtype: r0.dtype, shape, ...(samples ? { samples } : {}) });
  }
  return table;
}

export function initializerShape(t: TensorProto): ValueShape {
  return { dtype: t.dataType, shape: tensorDims(t) };
}
