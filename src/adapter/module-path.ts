/**
 * Module paths: the PEFT-style dotted name of the torch module a layer was exported from.
 *
 *   /bert/encoder/layer.0/attention/self/query/MatMul  ->  bert.encoder.layer.0.attention.self.query
 *   node "MatMul_7", weight "transformer.h.0.attn.c_attn.weight"  ->  transformer.h.0.attn.c_attn
 *   node "MatMul_7", weight "onnx::MatMul_123"  ->  MatMul_7
 *
 * Names that carry no module path (the last case) are replaced by names from the graph
 * structure when discovery places the layer in a recognised block (structural-names.ts).
 */

const OP_SEGMENT = /^(MatMul|Gemm)(_\d+)?$/;

/** Replaces characters that cannot appear in a PEFT key with `_`. */
export function sanitizeModulePath(s: string): string {
  return s
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/\.{2,}/g, '.')
    .replace(/^[._]+|[._]+$/g, '');
}

/** Which name a module path was read from. */
export type NameSource = 'node-name' | 'weight-name';

/**
 * The module path a layer's names carry, if they carry one:
 *
 * 1. A scoped node name (`/a/b/c/MatMul`): the scopes joined by `.`, the trailing op segment
 *    (`MatMul`, `Gemm_2`, or the node's own op type: `FusedMatMul`) dropped.
 * 2. Else a weight named `<module>.weight`: that module.
 *
 * @param nodeName - the ONNX node name (may be empty)
 * @param weightName - the weight initializer / constant output name
 * @param opType - the node's op type
 */
export function namedModulePath(nodeName: string, weightName: string | undefined, opType = 'MatMul'): { module: string; from: NameSource } | undefined {
  if (nodeName.startsWith('/')) {
    const segs = nodeName.split('/').filter((s) => s.length > 0);
    const isOp = (seg: string) => OP_SEGMENT.test(seg) || (seg.startsWith(opType) && /^(_\d+)?$/.test(seg.slice(opType.length)));
    if (segs.length > 1 && isOp(segs[segs.length - 1]!)) segs.pop();
    if (segs.length > 0 && !(segs.length === 1 && isOp(segs[0]!))) {
      const path = sanitizeModulePath(segs.join('.'));
      if (path) return { module: path, from: 'node-name' };
    }
  }
  if (weightName && /\.weight$/.test(weightName)) {
    const path = sanitizeModulePath(weightName.slice(0, -'.weight'.length));
    if (path) return { module: path, from: 'weight-name' };
  }
  return undefined;
}

/** The name of a layer whose names carry no module path: its sanitised node name, or `fallback`. */
export function fallbackModulePath(nodeName: string, fallback: string): string {
  return sanitizeModulePath(nodeName) || sanitizeModulePath(fallback) || 'layer';
}

/**
 * The module path for a layer from its names alone: `namedModulePath`, else the sanitised node
 * name, or `<op>_<index>` for an unnamed node.
 *
 * @param nodeName - the ONNX node name (may be empty)
 * @param weightName - the weight initializer / constant output name
 * @param fallback - used when nothing else gives a name (e.g. `matmul_12`)
 */
export function modulePathFor(nodeName: string, weightName: string | undefined, fallback: string): string {
  return namedModulePath(nodeName, weightName)?.module ?? fallbackModulePath(nodeName, fallback);
}

/**
 * Makes module paths unique: colliding paths get the layer's op segment appended
 * (`foo.MatMul`, `foo.MatMul_1`), then a numeric suffix if that still collides.
 */
export function uniquifyModulePaths(items: Array<{ module: string; node: string; op: string }>): void {
  const count = new Map<string, number>();
  for (const it of items) count.set(it.module, (count.get(it.module) ?? 0) + 1);
  const taken = new Set<string>();
  for (const it of items) {
    if (count.get(it.module) === 1 && !taken.has(it.module)) {
      taken.add(it.module);
      continue;
    }
    const last = it.node.split('/').filter(Boolean).pop() ?? it.op;
    let base = sanitizeModulePath(`${it.module}.${last}`) || it.module;
    let name = base;
    for (let i = 1; taken.has(name) || (name !== it.module && count.has(name)); i++) name = `${base}_${i}`;
    it.module = name;
    taken.add(name);
  }
}
