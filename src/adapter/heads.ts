/**
 * Output heads and output reach.
 *
 * A head is a layer whose output becomes a graph output with no other candidate layer in
 * between: through reshapes, casts, Split/Slice/Gather of its own output, bias/scale ops,
 * activations, softmax, a normalisation (also decomposed: ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add
 * of the one value) and layers that are not candidates (a tied decoder). Layers inside a
 * recognised attention block or MLP are never heads (a K/V projection reaches the `present`
 * cache outputs that way). Modules named like a head (`lm_head`, `classifier`, `qa_outputs`,
 * `cls.…`) are heads whatever the graph.
 *
 * Reach: which graph outputs each layer's output flows to, so training can tell which layers a
 * loss on one output can train.
 */
import type { NodeProto } from '../onnx/proto.ts';
import { singleSource } from './structure.ts';
import type { GraphFacts } from './graph-facts.ts';

const PASS_THROUGH = new Set([
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Transpose', 'Dropout', 'Split', 'Slice', 'Gather',
  'Softmax', 'LogSoftmax', 'Sigmoid', 'Tanh', 'Relu', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu',
  'LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);
/** Ops that make a one-input elementwise cone a normalisation or an activation (not just 2·x). */
const UNARY_MARKERS = ['ReduceMean', 'ReduceSumSquare', 'Erf', 'Tanh', 'Sigmoid'];

/** Last module-path segments that name an output head. */
const HEAD_LEAVES = new Set(['lm_head', 'embed_out', 'qa_outputs', 'classifier', 'score', 'seq_relationship', 'proj_out']);

/** Whether a module path names an output head (`lm_head`, `classifier.out_proj`, `cls.predictions.transform.dense`, …). */
export function isHeadName(module: string): boolean {
  const segs = module.split('.');
  return HEAD_LEAVES.has(segs.at(-1)!) || segs[0] === 'cls' || segs.some((s) => s === 'lm_head' || s === 'classifier' || s === 'qa_outputs');
}

/**
 * The nodes that compute a graph output with no other candidate in between (see above).
 *
 * @param isCandidate - the candidate layers
 */
export function outputHeads(f: GraphFacts, isCandidate: (n: NodeProto) => boolean): Set<NodeProto> {
  const heads = new Set<NodeProto>();
  for (const out of f.g.proto.output) {
    let v: string | undefined = out.name;
    for (let steps = 0; v && steps < 64; steps++) {
      const p = f.producer(v);
      if (!p) break;
      if (isCandidate(p)) {
        heads.add(p);
        break;
      }
      const spec = f.projections.get(p);
      const live = f.liveDataInputs(p);
      if (spec) v = p.input[spec.dataInput];
      else if ((PASS_THROUGH.has(p.opType) || BINARY.has(p.opType)) && live.length === 1) v = live[0];
      else {
        const cone = singleSource(f, v);
        v = cone && UNARY_MARKERS.some((m) => cone.ops.has(m)) ? cone.source : undefined;
      }
    }
  }
  return heads;
}

/**
 * The graph outputs each of `nodes` reaches (in the order of the graph's outputs).
 */
export function outputsReached(f: GraphFacts, nodes: readonly NodeProto[]): Map<NodeProto, string[]> {
  const outputs = f.g.proto.output.map((o) => o.name);
  const index = new Map(outputs.map((o, i) => [o, i]));
  const words = Math.max(1, Math.ceil(outputs.length / 32));
  const bits = new Map<NodeProto, Uint32Array>();
  // Reverse topological order: every consumer is done before its producer.
  for (let i = f.order.length - 1; i >= 0; i--) {
    const node = f.order[i]!;
    const b = new Uint32Array(words);
    for (const o of node.output) {
      if (!o) continue;
      const k = index.get(o);
      if (k !== undefined) b[k >>> 5]! |= 1 << (k & 31);
      for (const c of f.consumers(o)) {
        const cb = bits.get(c);
        if (cb) for (let w = 0; w < words; w++) b[w]! |= cb[w]!;
      }
    }
    bits.set(node, b);
  }
  const result = new Map<NodeProto, string[]>();
  for (const n of nodes) {
    const b = bits.get(n);
    result.set(n, b ? outputs.filter((_, k) => (b[k >>> 5]! >>> (k & 31)) & 1) : []);
  }
  return result;
}
