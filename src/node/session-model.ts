/**
 * A model encoded for an ONNX Runtime session with one copy of its weights in the process: ONNX
 * Runtime's. Tensors loaded lazily from a model file inside the model's folder (an inline
 * model's initializers, read on demand) are handed to ONNX Runtime as external-data references
 * into that same file, at the byte range their raw_data occupies there. The encoded graph is
 * then small, and ONNX Runtime reads the weights from the file itself, instead of from a
 * JavaScript buffer holding all of them (for a bert-base train graph, 420 MB) and a parsed
 * protobuf holding them again while the session is created.
 *
 * Tensors that already are external data keep their references; anything else stays inline.
 */
import { closeSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { create, DataLocation, GraphProtoSchema, ModelProtoSchema, StringStringEntryProtoSchema, TensorProtoSchema, type TensorProto } from '../onnx/proto.ts';
import { encodeModel, type OnnxModel } from '../onnx/model.ts';
import { deferredSource, isExternal } from '../onnx/tensor.ts';
import { externalDataPath, openSourceRange } from './files.ts';
import { externalDataFiles } from './model-data.ts';

/** Below this size a tensor stays inline (a reference would cost more than it saves). */
const MIN_REFERENCED_BYTES = 4096;

export interface SessionModel {
  /** The encoded model: the graph, small tensors, references for the rest. */
  model: Uint8Array;
  /** Every file its references name: location (relative to the model's folder) and path. */
  externalData: Array<{ path: string; data: string }>;
}

/** `model` encoded for a session (see above). */
export function sessionModel(model: OnnxModel): SessionModel {
  const graph = model.proto.graph;
  const files = new Map<string, string>(externalDataFiles(model).map((f) => [f.path, f.data]));
  if (!graph) return { model: encodeModel(model.proto), externalData: [...files].map(([path, data]) => ({ path, data })) };
  const initializer = graph.initializer.map((t) => {
    const ref = fileReference(t, model.baseDir);
    if (!ref) return t;
    files.set(ref.location, ref.path);
    return ref.tensor;
  });
  // Shallow copies: the caller's model keeps its lazily loaded tensors.
  const proto = create(ModelProtoSchema, { ...model.proto, graph: create(GraphProtoSchema, { ...graph, initializer }) });
  return { model: encodeModel(proto), externalData: [...files].map(([path, data]) => ({ path, data })) };
}

/** An external-data stand-in for a lazily loaded tensor whose file is inside `baseDir`. */
function fileReference(t: TensorProto, baseDir: string): { tensor: TensorProto; location: string; path: string } | undefined {
  const src = deferredSource(t);
  if (!src || isExternal(t) || src.length < MIN_REFERENCED_BYTES) return undefined;
  const rel = relative(baseDir, src.path);
  if (rel === '' || isAbsolute(rel) || rel.split(sep)[0] === '..') return undefined;
  const location = rel.split(sep).join('/');
  // The same checks a model's own external data gets (inside the folder, a regular file), and
  // the file must still be the one the range was taken from (E_SOURCE_CHANGED otherwise).
  const path = externalDataPath(baseDir, location);
  closeSync(openSourceRange(src));
  const tensor = create(TensorProtoSchema, {
    ...t,
    rawData: new Uint8Array(0),
    dataLocation: DataLocation.EXTERNAL,
    externalData: [
      ['location', location],
      ['offset', String(src.offset)],
      ['length', String(src.length)],
    ].map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
  return { tensor, location, path };
}
