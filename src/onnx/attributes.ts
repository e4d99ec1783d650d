/**
 * Reading and making node attributes. Numbers become INT attributes when integral; wrap a value
 * in `float()` / `floats()` to force FLOAT(S) (e.g. `alpha: float(1)`).
 */
import { AttrType, AttributeProtoSchema, create, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from './proto.ts';

export interface FloatAttr {
  readonly kind: 'float';
  readonly value: number;
}
export interface FloatsAttr {
  readonly kind: 'floats';
  readonly value: readonly number[];
}
export type AttrValue = number | bigint | string | readonly number[] | readonly string[] | FloatAttr | FloatsAttr | TensorProto | GraphProto;

export const float = (value: number): FloatAttr => ({ kind: 'float', value });
export const floats = (value: readonly number[]): FloatsAttr => ({ kind: 'floats', value });

export function makeAttribute(name: string, value: AttrValue): AttributeProto {
  const a = create(AttributeProtoSchema, { name });
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      a.type = AttrType.INT;
      a.i = BigInt(value);
    } else {
      a.type = AttrType.FLOAT;
      a.f = value;
    }
  } else if (typeof value === 'bigint') {
    a.type = AttrType.INT;
    a.i = value;
  } else if (typeof value === 'string') {
    a.type = AttrType.STRING;
    a.s = new TextEncoder().encode(value);
  } else if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      a.type = AttrType.STRINGS;
      a.strings = (value as string[]).map((v) => new TextEncoder().encode(v));
    } else {
      a.type = AttrType.INTS;
      a.ints = (value as number[]).map((v) => BigInt(v));
    }
  } else if ('kind' in (value as object) && (value as FloatAttr).kind === 'float') {
    a.type = AttrType.FLOAT;
    a.f = (value as FloatAttr).value;
  } else if ('kind' in (value as object) && (value as FloatsAttr).kind === 'floats') {
    a.type = AttrType.FLOATS;
    a.floats = [...(value as FloatsAttr).value];
  } else if ((value as TensorProto).$typeName === 'onnx.TensorProto') {
    a.type = AttrType.TENSOR;
    a.t = value as TensorProto;
  } else {
    a.type = AttrType.GRAPH;
    a.g = value as GraphProto;
  }
  return a;
}

export function findAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number;
export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = findAttr(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number;
export function attrFloat(node: NodeProto, name: string): number | undefined;
export function attrFloat(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = findAttr(node, name);
  return a ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = findAttr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function attrString(node: NodeProto, name: string, fallback?: string): string | undefined {
  const a = findAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : fallback;
}

/** Subgraphs held by a node's attributes (If branches, Loop/Scan bodies). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
}
