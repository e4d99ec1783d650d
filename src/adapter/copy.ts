/**
 * Shallow copies of protobuf messages. ONNX is a proto2 schema: protobuf-es keeps unset fields'
 * defaults on the message prototype, so an object spread would lose them (and their presence
 * semantics). `withFields` keeps the prototype and overrides only the given fields.
 */
export function withFields<T extends object>(message: T, patch: Partial<T>): T {
  return Object.assign(Object.create(Object.getPrototypeOf(message) as object) as T, message, patch);
}
