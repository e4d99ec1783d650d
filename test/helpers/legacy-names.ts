/**
 * Export variants without module paths in any name, to check that discovery finds the layers
 * from the graph structure alone.
 */
import { decodeModel, encodeModel, type OnnxModel } from '../../src/onnx/model.ts';

/**
 * A copy of a model named as a constant-folded legacy torch export names it: every node
 * `<OpType>_<i>`, every initializer and internal value a number; graph inputs and outputs keep
 * their names. No name then carries a module path.
 */
export function withLegacyNames(model: OnnxModel): OnnxModel {
  const proto = decodeModel(encodeModel(model.proto));
  const g = proto.graph!;
  const keep = new Set([...g.input, ...g.output].map((v) => v.name));
  const renamed = new Map<string, string>();
  const rename = (v: string) => {
    if (!v || keep.has(v)) return v;
    let r = renamed.get(v);
    if (!r) renamed.set(v, (r = String(100 + renamed.size)));
    return r;
  };
  for (const t of g.initializer) t.name = rename(t.name);
  g.node.forEach((n, i) => {
    n.name = `${n.opType}_${i}`;
    n.input = n.input.map(rename);
    n.output = n.output.map(rename);
  });
  for (const v of g.valueInfo) v.name = rename(v.name);
  return { proto, baseDir: model.baseDir };
}
