/**
 * Half-precision and multi-file external-data variants of a float32 model, made in the tests
 * (no fixture bytes): what an fp16 GPU export and a sharded external-data export look like.
 */
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataType as DT, bytesToFloat32, float32ToBytes } from '../../src/onnx/dtype.ts';
import { encodeModel, graphOf, type OnnxModel } from '../../src/onnx/model.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { clone, create, DataLocation, ModelProtoSchema, StringStringEntryProtoSchema, type TensorProto, type ValueInfoProto } from '../../src/onnx/proto.ts';
import { externalRef, isExternal, tensorBytes } from '../../src/onnx/tensor.ts';

const HALF_MAX = 65504;

function toHalfTensor(t: TensorProto, baseDir: string, dt: number): void {
  if (t.dataType !== DT.FLOAT) return;
  const v = bytesToFloat32(tensorBytes(t, baseDir), DT.FLOAT);
  // Clamp as fp16 converters do: the float32 mask minimum (−3.4e38) becomes −65504, not −inf.
  const lim = dt === DT.FLOAT16 ? HALF_MAX : Infinity;
  for (let i = 0; i < v.length; i++) v[i] = Math.max(-lim, Math.min(lim, v[i]!));
  t.rawData = float32ToBytes(v, dt) as Uint8Array<ArrayBuffer>;
  t.floatData = [];
  t.externalData = [];
  if (Object.hasOwn(t, 'dataLocation')) Reflect.deleteProperty(t, 'dataLocation');
  t.dataType = dt;
}

function toHalfValue(v: ValueInfoProto, dt: number): void {
  if (v.type?.value.case === 'tensorType' && v.type.value.value.elemType === DT.FLOAT) v.type.value.value.elemType = dt;
}

/**
 * The whole model in half precision, as a converted fp16 export: every float32 initializer,
 * Constant and ConstantOfShape value becomes `dt`, Casts to float32 cast to `dt` instead, and
 * float graph inputs/outputs/value infos change type. Integer inputs (token ids) are unchanged,
 * so the model takes the same feeds and returns `dt` logits.
 */
export function toHalfPrecision(model: OnnxModel, dt: number = DT.FLOAT16): OnnxModel {
  const proto = clone(ModelProtoSchema, model.proto);
  const g = proto.graph!;
  for (const t of g.initializer) toHalfTensor(t, model.baseDir, dt);
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.t && (n.opType === 'Constant' || n.opType === 'ConstantOfShape')) toHalfTensor(a.t, model.baseDir, dt);
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DT.FLOAT) a.i = BigInt(dt);
    }
  }
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) toHalfValue(v, dt);
  return { proto, baseDir: model.baseDir };
}

/**
 * Saves `model` with external data spread over two files: the `<file>_data` saveModel writes,
 * then every other external tensor moved to `<file>.weights-2.bin` (as sharded exports do).
 */
export function saveTwoDataFiles(model: OnnxModel, path: string): void {
  saveModel(model, path, { externalData: true });
  const saved = loadModel(path);
  const second = `${path.split('/').pop()!}.weights-2.bin`;
  const out = openSync(join(saved.baseDir, second), 'w');
  let offset = 0;
  let i = 0;
  try {
    for (const t of graphOf(saved).initializer) {
      if (!isExternal(t) || i++ % 2 === 0) continue;
      const ref = externalRef(t);
      const src = openSync(join(saved.baseDir, ref.location), 'r');
      const buf = new Uint8Array(ref.length);
      readSync(src, buf, 0, ref.length, ref.offset);
      closeSync(src);
      writeSync(out, buf);
      t.externalData = [
        create(StringStringEntryProtoSchema, { key: 'location', value: second }),
        create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: 'length', value: String(ref.length) }),
      ];
      t.dataLocation = DataLocation.EXTERNAL;
      offset += ref.length;
    }
  } finally {
    closeSync(out);
  }
  writeFileSync(path, encodeModel(saved.proto));
}
