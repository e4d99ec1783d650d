/**
 * The scaffolding shared by the model generators: a ModelProto in the making, one GraphBuilder
 * per torch-style scope (`/bert/encoder/layer.0/attention/self`), parameters filled straight into
 * Float32Arrays from seeded streams, and the small constants the TorchScript exporter emits as
 * `Constant` nodes inside each scope.
 *
 * Every node goes through GraphBuilder: node names come out as `<scope>/<Op>`, `<scope>/<Op>_1`,
 * …, and outputs as `<node>_output_0`, the layout of a torch.onnx / optimum export.
 */
import { create, ModelProtoSchema, type ModelProto } from '../../src/onnx/proto.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { floatTensor, int64Tensor, makeTensor } from '../../src/onnx/tensor.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { Rng } from './rng.ts';

export type Opset = 14 | 17 | 18 | 20 | 24;

/** Settings every generator shares. */
export interface CommonConfig {
  /** Default opset of the ai.onnx domain (default per model). */
  opset?: Opset;
  /** Seed of every random parameter (default 0). */
  seed?: number;
  /** σ of the normal init of weights and embeddings (default 0.02, as HF `initializer_range`). */
  initStd?: number;
  /** σ of linear biases; 0 (default) gives zero biases as HF's init does. */
  biasStd?: number;
  /**
   * Names of the [in, out] MatMul weights of `nn.Linear` layers: `anonymous` (default) gives
   * `onnx::MatMul_<n>` as the TorchScript exporter does; `module` gives `<module>.weight` (still
   * stored [in, out]).
   */
  weightNames?: 'anonymous' | 'module';
}

/** IR version the exporter writes for an opset (onnx 1.12 → 7 at 14, 8 at 17/18; 9 at 20; 11 at 24). */
export function irVersionFor(opset: Opset): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 11;
}

/** torch.finfo(torch.float32).min, the additive mask value of HF models. */
export const FLOAT32_MIN = -3.4028234663852886e38;

export type ParamInit = { normal: number } | 'ones' | 'zeros' | Float32Array;

export class ExportContext {
  readonly proto: ModelProto;
  readonly graph: Graph;
  readonly opset: Opset;
  readonly seed: number;
  readonly initStd: number;
  readonly biasStd: number;
  readonly weightNames: 'anonymous' | 'module';
  readonly #builders = new Map<string, GraphBuilder>();
  #anonId: number;

  constructor(cfg: CommonConfig & { opset: Opset; graphName?: string; anonymousStart?: number }) {
    this.opset = cfg.opset;
    this.seed = cfg.seed ?? 0;
    this.initStd = cfg.initStd ?? 0.02;
    this.biasStd = cfg.biasStd ?? 0;
    this.weightNames = cfg.weightNames ?? 'anonymous';
    this.#anonId = cfg.anonymousStart ?? 1000;
    this.proto = create(ModelProtoSchema, {
      irVersion: BigInt(irVersionFor(cfg.opset)),
      producerName: 'peanut-onnx-tools',
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: BigInt(cfg.opset) }],
      graph: { name: cfg.graphName ?? 'main_graph' },
    });
    this.graph = new Graph(this.proto.graph!);
  }

  /** The builder of a scope (`/bert/embeddings`); node names are `<scope>/<Op>[_k]`. */
  at(scope: string): GraphBuilder {
    let b = this.#builders.get(scope);
    if (!b) this.#builders.set(scope, (b = new GraphBuilder(this.graph, scope)));
    return b;
  }

  input(name: string, elemType: number, dims: ReadonlyArray<number | string>): string {
    this.graph.reserve(name);
    this.graph.proto.input.push(makeValueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: ReadonlyArray<number | string>): void {
    this.graph.proto.output.push(makeValueInfo(name, elemType, dims));
  }

  /**
   * A float32 parameter initializer. Random values come from the stream of (seed, `key`), `key`
   * defaulting to the name, and are written straight into the tensor's bytes (no copy).
   */
  param(name: string, dims: readonly number[], init: ParamInit, key: string = name): string {
    const n = dims.reduce((a, d) => a * d, 1);
    let values: Float32Array;
    if (init instanceof Float32Array) values = init;
    else if (init === 'ones') values = new Float32Array(n).fill(1);
    else if (init === 'zeros') values = new Float32Array(n);
    else values = new Rng(this.seed, key).fillNormal(new Float32Array(n), init.normal);
    if (values.length !== n) throw new Error(`parameter ${name}: ${values.length} values for [${dims.join(', ')}]`);
    this.graph.addInitializer(makeTensor(name, DT.FLOAT, dims, new Uint8Array(values.buffer, values.byteOffset, values.byteLength)));
    return name;
  }

  /** Values of N(0, σ²) for a parameter key, without adding an initializer. */
  normal(key: string, n: number, std: number = this.initStd): Float32Array {
    return new Rng(this.seed, key).fillNormal(new Float32Array(n), std);
  }

  /** Bias init: zeros, or N(0, biasStd²) when biasStd > 0. */
  biasInit(): ParamInit {
    return this.biasStd > 0 ? { normal: this.biasStd } : 'zeros';
  }

  /**
   * The [in, out] weight of an `nn.Linear` exported as MatMul: random N(0, std²) keyed by
   * `<module>.weight`, named per `weightNames`.
   */
  linearWeight(module: string, inF: number, outF: number, std: number = this.initStd, values?: Float32Array): string {
    const name = this.weightNames === 'module' ? `${module}.weight` : `onnx::MatMul_${this.#anonId++}`;
    return this.param(name, [inF, outF], values ?? { normal: std }, `${module}.weight`);
  }

  /** An anonymous initializer id, for other folded constants. */
  anonName(kind: string): string {
    return `onnx::${kind}_${this.#anonId++}`;
  }

  model(): OnnxModel {
    return { proto: this.proto, baseDir: process.cwd() };
  }
}

/** A row-major [rows, cols] matrix transposed to [cols, rows]. */
export function transposed(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

// ---- constants as Constant nodes, as the TorchScript exporter writes them --------------------

export function constI64(b: GraphBuilder, values: readonly number[], dims: readonly number[] = [values.length]): string {
  return b.op('Constant', [], { value: int64Tensor('', dims, values) }, { name: 'Constant' });
}

/** A 0-d int64 constant. */
export function scalarI64(b: GraphBuilder, value: number): string {
  return constI64(b, [value], []);
}

/** A 0-d float32 constant. */
export function scalarF32(b: GraphBuilder, value: number): string {
  return b.op('Constant', [], { value: floatTensor('', [], [value]) }, { name: 'Constant' });
}

export function constF32(b: GraphBuilder, values: Float32Array, dims: readonly number[]): string {
  return b.op('Constant', [], { value: floatTensor('', dims, values) }, { name: 'Constant' });
}

export function constBool(b: GraphBuilder, values: Uint8Array, dims: readonly number[]): string {
  return b.op('Constant', [], { value: makeTensor('', DT.BOOL, dims, values) }, { name: 'Constant' });
}

// ---- shape plumbing ----------------------------------------------------------------------

/** `x.size(axis)` as a 0-d int64: Shape → Gather. */
export function dim(b: GraphBuilder, x: string, axis: number): string {
  const shape = b.op('Shape', [x]);
  return b.op('Gather', [shape, scalarI64(b, axis)], { axis: 0 });
}

/** Unsqueeze with axes as an input (opset ≥ 13). */
export function unsqueeze(b: GraphBuilder, x: string, axes: readonly number[]): string {
  return b.op('Unsqueeze', [x, constI64(b, axes)]);
}

/** Squeeze with axes as an input (opset ≥ 13). */
export function squeeze(b: GraphBuilder, x: string, axes: readonly number[]): string {
  return b.op('Squeeze', [x, constI64(b, axes)]);
}

/**
 * A 1-D shape tensor from parts: numbers become constants, strings are 0-d int64 values
 * (unsqueezed) as the exporter builds view/reshape targets.
 */
export function shapeOf(b: GraphBuilder, parts: ReadonlyArray<number | string>): string {
  const pieces = parts.map((p) => (typeof p === 'number' ? constI64(b, [p]) : unsqueeze(b, p, [0])));
  return b.op('Concat', pieces, { axis: 0 });
}

export function reshape(b: GraphBuilder, x: string, shape: string): string {
  return b.op('Reshape', [x, shape], { allowzero: 0 });
}

/** ReduceMean over `axes` (keepdims, the default): axes an attribute before opset 18, an input from 18. */
export function reduceMean(ctx: ExportContext, b: GraphBuilder, x: string, axes: readonly number[]): string {
  if (ctx.opset >= 18) return b.op('ReduceMean', [x, constI64(b, axes)]);
  return b.op('ReduceMean', [x], { axes: [...axes] });
}
