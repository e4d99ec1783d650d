/**
 * A decoded ONNX model in memory: decoding bytes with clear errors, encoding it back (tensor bytes
 * that live in files are read through the installed file reader, see files.ts), and cheap
 * editable copies. Reading and writing model files is the Node layer's job (src/node/model-files.ts).
 */
import { PeanutError } from '../errors.ts';
import { fileReader } from './files.ts';
import { create, fromBinary, GraphProtoSchema, ModelProtoSchema, type GraphProto, type ModelProto, type TensorProto } from './proto.ts';
import { deferredBytes, deferredSource, isExternal, materializeDeferred, numElements, tensorDims } from './tensor.ts';
import { isFloatType } from './dtype.ts';
import { encodeModelParts } from './encode-chunks.ts';
import { checkModelTensors } from './check-tensors.ts';

/** A decoded model and the directory its external data locations are relative to. */
export interface OnnxModel {
  proto: ModelProto;
  baseDir: string;
  /** The file it was read from, if any. */
  path?: string;
}

export function graphOf(model: OnnxModel): GraphProto {
  const g = model.proto.graph;
  if (!g) throw new PeanutError('E_NOT_ONNX', 'model has no graph');
  return g;
}

/**
 * Decodes ONNX bytes; a clear error for anything that is not a model. Every tensor is checked
 * (`checkModelTensors`: element type, dims, byte length, external-data fields) unless
 * `checkTensors` is false, for a caller that checks them itself after completing the tensors
 * (the lazy file load).
 */
export function decodeModel(bytes: Uint8Array, what = 'input', checkTensors = true): ModelProto {
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    throw new PeanutError('E_NOT_ONNX', `${what} is not a valid ONNX model (protobuf decode failed: ${(err as Error).message}); is the file truncated or of another format?`);
  }
  const g = proto.graph;
  if (proto.irVersion <= 0n || !g || proto.opsetImport.length === 0) {
    throw new PeanutError('E_NOT_ONNX', `${what} is not an ONNX model (no IR version, graph or opset import)`);
  }
  for (const n of g.node) {
    if (!n.opType) throw new PeanutError('E_NOT_ONNX', `${what} is not a valid ONNX model (a node has no op type); is the file corrupt?`);
  }
  if (checkTensors) checkModelTensors(proto, what);
  return proto;
}

/** Every initializer of the main graph and of nested subgraphs. */
export function allInitializers(graph: GraphProto): TensorProto[] {
  const out: TensorProto[] = [...graph.initializer];
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.g) out.push(...allInitializers(a.g));
      for (const sg of a.graphs) out.push(...allInitializers(sg));
    }
  }
  return out;
}

/**
 * Deferred tensors of nested subgraphs get their bytes (the main graph's are streamed by the
 * writers; see encodeModelParts).
 */
export function materializeNested(graph: GraphProto): void {
  const main = new Set(graph.initializer);
  for (const t of allInitializers(graph)) if (!main.has(t) && !isExternal(t)) materializeDeferred(t);
}

/**
 * Encodes a model into one buffer; inline tensors only (callers go through saveModel for files).
 * Deferred tensors' bytes are read or computed straight into the buffer; the model is not
 * changed (except that deferred tensors of nested subgraphs are materialised).
 */
export function encodeModel(proto: ModelProto): Uint8Array {
  if (proto.graph) materializeNested(proto.graph);
  const parts = encodeModelParts(proto);
  if (parts.length === 1 && parts[0] instanceof Uint8Array) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + (p instanceof Uint8Array ? p.byteLength : p.length), 0));
  let at = 0;
  for (const p of parts) {
    if (p instanceof Uint8Array) {
      out.set(p, at);
      at += p.byteLength;
      continue;
    }
    const src = deferredSource(p.tensor);
    if (src) fileReader().readSource(src, out.subarray(at, at + p.length));
    else out.set(checkedBytes(p.tensor, p.length), at);
    at += p.length;
  }
  return out;
}

/** A deferred tensor's computed bytes, checked against the length its encoding assumed. */
export function checkedBytes(t: TensorProto, length: number): Uint8Array {
  const bytes = deferredBytes(t)!;
  if (bytes.byteLength !== length) throw new PeanutError('E_GRAPH', `tensor '${t.name}' produced ${bytes.byteLength} bytes, expected ${length} for its shape and type`);
  return bytes;
}

/**
 * A copy of a model whose graph lists (nodes, initializers, inputs, outputs, value infos) and
 * metadata can be edited without touching the original. Nodes and tensors are shared, so tensor
 * bytes (inline, lazily loaded or external) are not copied.
 */
export function editableCopy(proto: ModelProto): ModelProto {
  const g = proto.graph;
  if (!g) throw new PeanutError('E_NOT_ONNX', 'model has no graph');
  return create(ModelProtoSchema, {
    ...proto,
    metadataProps: [...proto.metadataProps],
    graph: create(GraphProtoSchema, {
      ...g,
      node: [...g.node],
      initializer: [...g.initializer],
      input: [...g.input],
      output: [...g.output],
      valueInfo: [...g.valueInfo],
    }),
  });
}

/** The opset of the default ONNX domain a model imports (1 when it imports none). */
export function defaultOpset(proto: Pick<ModelProto, 'opsetImport'>): number {
  const e = proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return e ? Number(e.version) : 1;
}

/** Number of floating-point values in a model's initializers (its parameters, as PyTorch counts them). */
export function countParameters(model: { proto: ModelProto }): number {
  let n = 0;
  for (const t of allInitializers(model.proto.graph!)) if (isFloatType(t.dataType)) n += numElements(tensorDims(t));
  return n;
}
