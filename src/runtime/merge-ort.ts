/**
 * Merge with ΔW computed by ONNX Runtime: each target's own tweaker nodes, taken from the
 * adapted model, run as a small model whose inputs are W0 (float32) and θ and whose output is
 * the float32 W. Merge and the adapted model then evaluate the very same nodes, and ORT's
 * matrix kernels make it much faster than the JS path on large layers. bfloat16 targets (which
 * onnxruntime-node cannot feed) and parts of a packed weight fall back to the JS path.
 */
import { PeanutError } from '../errors.ts';
import { DataType as DT } from '../onnx/dtype.ts';
import { makeValueInfo } from '../onnx/graph.ts';
import { encodeModel, graphOf, type OnnxModel } from '../onnx/model.ts';
import { create, GraphProtoSchema, ModelProtoSchema, type NodeProto } from '../onnx/proto.ts';
import type { AdapterTarget } from '../adapter/adapter-meta.ts';
import { mergeState, mergedWeight, readTargetWeight, rebuildMerged, requireAdapter, type MergeOptions } from '../adapter/merge.ts';
import type { TweakerState } from '../adapter/state.ts';
import type { Runtime } from './session.ts';
import { f32Tensor, type Feeds } from './tensors.ts';

interface TweakerPart {
  target: AdapterTarget;
  nodes: NodeProto[];
  /** Float32 W0 input and float32 W output names. */
  w0: string;
  w: string;
  stored: number[];
}

/** One target's tweaker nodes, without the boundary casts of fp16/bf16 weights. */
function tweakerPart(byName: ReadonlyMap<string, NodeProto>, t: AdapterTarget): TweakerPart {
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
  return { target: t, nodes, w0, w, stored: t.layout === 'oi' ? [t.out, t.in] : [t.in, t.out] };
}

/** Several targets' tweakers as one model: (W0 float32, θ)… -> W float32…. */
function tweakerModel(adapted: OnnxModel, parts: readonly TweakerPart[]): Uint8Array {
  const g = graphOf(adapted);
  const constants = new Set(parts.flatMap((p) => p.target.constants));
  const graph = create(GraphProtoSchema, {
    name: 'peanut_onnx_merge',
    node: parts.flatMap((p) => p.nodes),
    initializer: g.initializer.filter((x) => constants.has(x.name)),
    input: parts.flatMap((p) => [makeValueInfo(p.w0, DT.FLOAT, p.stored), ...p.target.params.map((q) => makeValueInfo(q.name, DT.FLOAT, q.shape))]),
    output: parts.map((p) => makeValueInfo(p.w, DT.FLOAT, p.stored)),
  });
  return encodeModel(create(ModelProtoSchema, { irVersion: adapted.proto.irVersion, opsetImport: adapted.proto.opsetImport, graph }));
}

/** Runs a group of tweakers in one session. */
async function runGroup(runtime: Runtime, adapted: OnnxModel, parts: readonly TweakerPart[], state: TweakerState, out: Map<AdapterTarget, Float32Array>): Promise<void> {
  const session = await runtime.createSession(tweakerModel(adapted, parts));
  try {
    const feeds: Feeds = {};
    for (const p of parts) {
      feeds[p.w0] = f32Tensor(readTargetWeight(adapted, p.target), p.stored);
      for (const q of p.target.params) feeds[q.name] = f32Tensor(state.get(q.name)!, q.shape);
    }
    const results = await session.run(feeds);
    for (const p of parts) out.set(p.target, results[p.w]!.data as Float32Array);
  } finally {
    await session.release();
  }
}

/** Weights per session run: bounds memory on large models. */
const GROUP_BYTES = 256 * 2 ** 20;

/**
 * Like `merge`, with ΔW evaluated by ONNX Runtime from the adapted model's own tweaker nodes.
 *
 * @throws PeanutError as `merge`
 */
export async function mergeWithRuntime(runtime: Runtime, adapted: OnnxModel, opts: MergeOptions = {}): Promise<OnnxModel> {
  const meta = requireAdapter(adapted);
  const state = mergeState(adapted, meta, opts);
  const byName = new Map(graphOf(adapted).node.map((n) => [n.name, n]));
  const weights = new Map<AdapterTarget, Float32Array>();
  let group: TweakerPart[] = [];
  let bytes = 0;
  for (const t of meta.targets) {
    // bfloat16 (no ORT feed) and parts of a packed weight (merged in place) take the JS path.
    if (t.elemType === DT.BFLOAT16 || t.columns) continue;
    group.push(tweakerPart(byName, t));
    bytes += t.in * t.out * 4;
    if (bytes >= GROUP_BYTES) {
      await runGroup(runtime, adapted, group, state, weights);
      group = [];
      bytes = 0;
    }
  }
  if (group.length) await runGroup(runtime, adapted, group, state, weights);
  return rebuildMerged(adapted, meta, (t, readW0) => weights.get(t) ?? mergedWeight(meta, t, readW0(), state), opts.safe ?? false);
}
