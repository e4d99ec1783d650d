/**
 * Merge with ΔW computed by ONNX Runtime: each target's own tweaker nodes, taken from the
 * adapted model, run as a small model whose inputs are W0 (float32) and θ and whose output is
 * the float32 W. Merge and the adapted model then evaluate the very same nodes, and ORT's
 * matrix kernels make it much faster than the JS path on large layers. bfloat16 targets (which
 * onnxruntime-node cannot feed) fall back to the JS path.
 */
import { PeanutError } from '../errors.ts';
import { DataType as DT } from '../onnx/dtype.ts';
import { makeValueInfo } from '../onnx/graph.ts';
import { encodeModel, graphOf, type OnnxModel } from '../onnx/io.ts';
import { create, GraphProtoSchema, ModelProtoSchema, type NodeProto } from '../onnx/proto.ts';
import type { AdapterTarget } from './adapter-meta.ts';
import { mergeState, mergedWeight, readTargetWeight, rebuildMerged, requireAdapter, type MergeOptions } from './merge.ts';
import type { TweakerState } from './state.ts';

/** The tweaker of one target as a standalone model: (W0 float32, θ) -> W float32. */
function tweakerModel(adapted: OnnxModel, t: AdapterTarget): { bytes: Uint8Array; w0: string; w: string } {
  const g = graphOf(adapted);
  const byName = new Map(g.node.map((n) => [n.name, n]));
  let nodes: NodeProto[] = t.nodes.map((name) => {
    const n = byName.get(name);
    if (!n) throw new PeanutError('E_GRAPH', `adapted model has no node '${name}' of ${t.module}'s tweaker; was it edited after injection?`);
    return n;
  });
  let w0 = t.weight;
  let w = t.output;
  if (t.elemType !== DT.FLOAT) {
    // Skip the boundary casts: feed W0 and read W in float32.
    const castIn = nodes.find((n) => n.opType === 'Cast' && n.input[0] === t.weight);
    const castOut = nodes.find((n) => n.output[0] === t.output);
    if (!castIn || !castOut || castOut.opType !== 'Cast') throw new PeanutError('E_GRAPH', `${t.module}'s tweaker has no Cast at its boundary`);
    w0 = castIn.output[0]!;
    w = castOut.input[0]!;
    nodes = nodes.filter((n) => n !== castIn && n !== castOut);
  }
  const constants = new Set(t.constants);
  const stored = t.layout === 'oi' ? [t.out, t.in] : [t.in, t.out];
  const graph = create(GraphProtoSchema, {
    name: 'peanut_onnx_merge',
    node: nodes,
    initializer: g.initializer.filter((x) => constants.has(x.name)),
    input: [makeValueInfo(w0, DT.FLOAT, stored), ...t.params.map((p) => makeValueInfo(p.name, DT.FLOAT, p.shape))],
    output: [makeValueInfo(w, DT.FLOAT, stored)],
  });
  const proto = create(ModelProtoSchema, { irVersion: adapted.proto.irVersion, opsetImport: adapted.proto.opsetImport, graph });
  return { bytes: encodeModel(proto), w0, w };
}

async function mergedWeightOrt(adapted: OnnxModel, t: AdapterTarget, w0: Float32Array, state: TweakerState): Promise<Float32Array> {
  const { createSession, f32Tensor } = await import('../runtime.ts');
  const m = tweakerModel(adapted, t);
  const { session } = await createSession(m.bytes, { ep: 'cpu' });
  try {
    const stored = t.layout === 'oi' ? [t.out, t.in] : [t.in, t.out];
    const feeds: Record<string, ReturnType<typeof f32Tensor>> = { [m.w0]: f32Tensor(w0, stored) };
    for (const p of t.params) feeds[p.name] = f32Tensor(state.get(p.name)!, p.shape);
    const out = await session.run(feeds);
    return out[m.w]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/**
 * Like `merge`, with ΔW evaluated by ONNX Runtime from the adapted model's own tweaker nodes.
 *
 * @throws PeanutError as `merge`
 */
export async function mergeWithRuntime(adapted: OnnxModel, opts: MergeOptions = {}): Promise<OnnxModel> {
  const meta = requireAdapter(adapted);
  const state = mergeState(adapted, meta, opts);
  const weights = new Map<AdapterTarget, Float32Array>();
  for (const t of meta.targets) {
    if (t.elemType !== DT.BFLOAT16) weights.set(t, await mergedWeightOrt(adapted, t, readTargetWeight(adapted, t), state));
  }
  return rebuildMerged(adapted, meta, (t, readW0) => weights.get(t) ?? mergedWeight(meta, t, readW0(), state), opts.safe ?? false);
}
