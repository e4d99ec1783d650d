/**
 * A float32 model in half precision, as an fp16 (or bf16) conversion of an export gives it
 * (onnxconverter-common's `convert_float_to_float16` without keeping float32 I/O): weights,
 * constants, casts, float inputs (caches included) and outputs all change type. Used to make the
 * fp16 decoders and classifiers the tests train.
 */
import { DataType as DT, bytesToFloat32, float32ToBytes } from '../../src/onnx/dtype.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { clone, ModelProtoSchema, type TensorProto, type ValueInfoProto } from '../../src/onnx/proto.ts';
import { tensorBytes } from '../../src/onnx/tensor.ts';

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

