/**
 * The ONNX protobuf schema. `onnx-buf` is the ONNX 1.20 schema compiled for @bufbuild/protobuf v2,
 * which keeps unknown fields and round-trips current (IR 10) exports byte for byte; see
 * docs/codec.md for the measurements behind this choice. Every other module imports the schema
 * from here, so the codec can be swapped in one place.
 */
export {
  ModelProtoSchema,
  GraphProtoSchema,
  NodeProtoSchema,
  TensorProtoSchema,
  AttributeProtoSchema,
  ValueInfoProtoSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  AttributeProto_AttributeType as AttrType,
  TensorProto_DataLocation as DataLocation,
} from 'onnx-buf';
export type {
  ModelProto,
  GraphProto,
  NodeProto,
  TensorProto,
  AttributeProto,
  ValueInfoProto,
  TypeProto,
  StringStringEntryProto,
} from 'onnx-buf';
export { create, fromBinary, toBinary, clone } from '@bufbuild/protobuf';
