/**
 * Where a training step goes: ONNX Runtime's own profiler (`enableProfiling`) on the fused train
 * graph, built and run as `peanut-onnx train` builds and runs it, and on the frozen forward.
 *
 *   npx tsx tools/profile-step.ts [--model tiny|base|<file.onnx>] [--method peanut|lora] [--steps N]
 *                                 [--threads T] [--out bench/profile-<model>.json]
 *
 * Kernel times are summed per op type and per phase, the phase read from the node's name: the
 * backward's nodes are built under `/grad/…`, the loss under `/loss/…`, AdamW under `/optimizer`,
 * the adapter's ΔW under `/peanut_onnx/…`; anything else is the model's forward. Nodes ONNX
 * Runtime's optimizer made (fusions) are placed by the name of their first output, which is the
 * tensor the node they replaced wrote (ONNX Runtime's optimized graph is saved to read it); what
 * still has no phase counts as `other`. The first run is warm-up and left out; times are per step. "Outside kernels" is the
 * run's wall time minus the sum of its kernels (feeds, fetches, allocation, scheduling).
 * Same batch as the bench: 8 × 128 tokens, rank 8 on query,value, PEANuT depth 0.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from '../src/adapter/inject.ts';
import { createSession, nodeRuntime, ort } from '../src/node/onnxruntime.ts';
import { loadModel, saveModel } from '../src/node/model-files.ts';
import { encodeModel, graphOf } from '../src/onnx/model.ts';
import { adamWScalarFeeds } from '../src/train/adamw.ts';
import { buildTrainingPlan } from '../src/train/plan.ts';
import { trainingSessionOptions } from '../src/train/training-graph.ts';
import { Random } from '../src/util/random.ts';
import { buildBertBase } from './lib/bert.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BATCH = 8;
const SEQ = 128;
const USAGE = 'usage: npx tsx tools/profile-step.ts [--model tiny|base|<file.onnx>] [--method peanut|lora] [--steps N] [--threads T] [--out file.json]';

interface Event {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

type Phase = 'forward' | 'adapter' | 'loss' | 'backward' | 'optimizer' | 'other';

function prefixPhase(name: string): Phase | undefined {
  if (name.startsWith('/grad/')) return 'backward';
  if (name.startsWith('/optimizer')) return 'optimizer';
  if (name.startsWith('/loss/')) return 'loss';
  if (name.startsWith('/peanut_onnx/')) return 'adapter';
  return undefined;
}

/** A node's phase from its name, or for a node the optimizer made, from its output's name. */
function phaseOf(node: string, known: ReadonlySet<string>, renamed?: ReadonlyMap<string, string>): Phase {
  const p = prefixPhase(node);
  if (p) return p;
  if (known.has(node)) return 'forward';
  const out = renamed?.get(node);
  if (out) return prefixPhase(out) ?? (out.startsWith('/') || known.has(out) ? 'forward' : 'other');
  return 'other';
}

/** Runs `runs` calls on a profiling session and returns its events (the file is removed). */
async function profile(model: Uint8Array | string, feeds: () => Record<string, InstanceType<typeof ort.Tensor>>, runs: number, threads: number, train: boolean, after?: (out: Record<string, unknown>) => void) {
  const dir = join(ROOT, 'bench', 'work', `profile-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const prefix = join(dir, 'ort');
  const optimized = join(dir, 'optimized.onnx');
  const profiling = { enableProfiling: true, profileFilePrefix: prefix, optimizedModelFilePath: optimized };
  // The train session with the options `peanut-onnx train` uses.
  const { session } = await createSession(model, train ? { ...trainingSessionOptions({ ep: 'cpu', threads, extra: profiling }), ep: 'cpu' } : { ep: 'cpu', threads, extra: profiling });
  // Nodes ONNX Runtime's optimizer made (fusions) get new names; their first output keeps the
  // name of the tensor the replaced node wrote, which tells the phase.
  const renamed = new Map<string, string>();
  for (const n of graphOf(loadModel(optimized)).node) if (n.output[0]) renamed.set(n.name, n.output[0]);
  const wall: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const out = await session.run(feeds());
    wall.push(performance.now() - t);
    after?.(out);
  }
  await session.release();
  const file = readdirSync(dir).find((f) => f.startsWith('ort') && f.endsWith('.json'));
  if (!file) throw new Error(`ONNX Runtime wrote no profile under ${dir}`);
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Event[];
  rmSync(dir, { recursive: true, force: true });
  return { events, wall, renamed };
}

/** Kernel time per op type and per phase, per run, runs after the first. */
function breakdown(events: Event[], known: ReadonlySet<string>, runs: number, renamed: ReadonlyMap<string, string>) {
  const starts = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const measured = starts.slice(1);
  const from = measured[0]?.ts ?? 0;
  const n = Math.max(1, runs - 1);
  const perOp: Record<string, { ms: number; calls: number }> = {};
  const perPhase: Record<string, number> = {};
  const perPhaseOp: Record<string, Record<string, number>> = {};
  let kernels = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    const op = e.args?.op_name ?? '?';
    const phase = phaseOf(node, known, renamed);
    const ms = e.dur / 1000 / n;
    kernels += ms;
    perOp[op] = { ms: (perOp[op]?.ms ?? 0) + ms, calls: (perOp[op]?.calls ?? 0) + 1 / n };
    perPhase[phase] = (perPhase[phase] ?? 0) + ms;
    (perPhaseOp[phase] ??= {})[op] = (perPhaseOp[phase]![op] ?? 0) + ms;
  }
  const runMs = measured.reduce((s, e) => s + e.dur / 1000, 0) / n;
  const r = (v: number) => Number(v.toFixed(3));
  const sorted = <T>(o: Record<string, T>, key: (v: T) => number) => Object.fromEntries(Object.entries(o).sort((a, b) => key(b[1]) - key(a[1])));
  return {
    runMs: r(runMs),
    kernelMs: r(kernels),
    outsideKernelsMs: r(runMs - kernels),
    perPhaseMs: sorted(Object.fromEntries(Object.entries(perPhase).map(([k, v]) => [k, r(v)])), (v) => v),
    perOp: sorted(Object.fromEntries(Object.entries(perOp).map(([k, v]) => [k, { ms: r(v.ms), calls: Math.round(v.calls), share: r(v.ms / kernels) }])), (v) => v.ms),
    perPhaseOp: Object.fromEntries(Object.entries(perPhaseOp).map(([p, ops]) => [p, sorted(Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, r(v)])), (v) => v)])),
  };
}

async function main(argv: string[]): Promise<void> {
  let modelArg = 'tiny';
  let method: 'peanut' | 'lora' = 'peanut';
  let steps = 20;
  let threads = 2;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--model') modelArg = argv[++i] ?? '';
    else if (k === '--method') {
      const m = argv[++i];
      if (m !== 'peanut' && m !== 'lora') throw new RangeError(`--method: expected peanut or lora, got '${m ?? ''}'`);
      method = m;
    } else if (k === '--steps') steps = Math.max(2, Number(argv[++i]));
    else if (k === '--threads') threads = Math.max(1, Number(argv[++i]));
    else if (k === '--out') out = resolve(argv[++i] ?? '');
    else if (k === '--help' || k === '-h') {
      console.log(USAGE);
      return;
    } else throw new RangeError(`unknown argument '${k}'; ${USAGE}`);
  }
  let path: string;
  if (modelArg === 'tiny') path = join(ROOT, 'graphs', 'bert-tiny.onnx');
  else if (modelArg === 'base') {
    path = join(ROOT, 'bench', 'work', 'bert-base.onnx');
    mkdirSync(dirname(path), { recursive: true });
    saveModel(buildBertBase(), path);
  } else path = resolve(modelArg);
  const label = modelArg === 'tiny' || modelArg === 'base' ? modelArg : 'model';
  out ??= join(ROOT, 'bench', `profile-${label}.json`);

  const base = loadModel(path);
  const forwardNodes = new Set(graphOf(base).node.map((n) => n.name));
  const vocab = Number(graphOf(base).initializer.find((t) => t.name === 'bert.embeddings.word_embeddings.weight')?.dims[0] ?? 128);
  const rng = new Random(1234);
  const ids = BigInt64Array.from({ length: BATCH * SEQ }, (_, i) => BigInt(i % SEQ === 0 ? 1 : 4 + rng.int(vocab - 4)));
  const inputs = () => ({
    input_ids: new ort.Tensor('int64', ids, [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ).fill(1n), [BATCH, SEQ]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ), [BATCH, SEQ]),
  });

  // Frozen forward.
  const fwd = await profile(path, inputs, steps, threads, false);
  const forward = breakdown(fwd.events, forwardNodes, steps, fwd.renamed);

  // Training step, as `peanut-onnx train` builds it.
  const adapted = inject(base, { method, r: 8, depth: 0, alpha: 16, targets: 'query,value', seed: 0 }).model;
  const built = await buildTrainingPlan(nodeRuntime, adapted, { task: 'seq-cls' });
  const trainProto = built.graphs.train;
  const trainNodes = trainProto.graph!.node.length;
  const nodeOps: Record<string, Record<string, number>> = {};
  for (const n of trainProto.graph!.node) {
    const ph = phaseOf(n.name, forwardNodes);
    (nodeOps[ph] ??= {})[n.opType] = (nodeOps[ph]![n.opType] ?? 0) + 1;
  }
  const m = built.manifest;
  const h = m.train.inputs.hyperparameters;
  const theta = new Map([...built.params].map(([k, t]) => [k, { data: t.data as Float32Array, shape: t.shape }]));
  const labels = new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(i % 2)), [BATCH]);
  let step = 0;
  const trainFeeds = () => {
    step++;
    const f: Record<string, InstanceType<typeof ort.Tensor>> = { ...inputs(), [m.labels[0]!.name]: labels };
    for (const [n, x] of Object.entries(adamWScalarFeeds(h, { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: null }, step))) f[n] = new ort.Tensor('float32', x, []);
    for (const [k, t] of theta) {
      f[k] = new ort.Tensor('float32', t.data, t.shape);
      f[m.train.inputs.moments.m[k]!] = new ort.Tensor('float32', new Float32Array(t.data.length), t.shape);
      f[m.train.inputs.moments.v[k]!] = new ort.Tensor('float32', new Float32Array(t.data.length), t.shape);
    }
    return f;
  };
  const tr = await profile(encodeModel(trainProto), trainFeeds, steps, threads, true);
  const train = breakdown(tr.events, forwardNodes, steps, tr.renamed);
  const median = (xs: number[]) => {
    const s = xs.slice(1).sort((a, b) => a - b);
    return Number(s[s.length >> 1]!.toFixed(3));
  };
  const report = {
    generated: new Date().toISOString(),
    model: label,
    method,
    threads,
    steps,
    runtime: nodeRuntime.label,
    forwardGraphNodes: forwardNodes.size,
    trainGraphNodes: trainNodes,
    trainGraphNodesPerPhase: nodeOps,
    wallMedianMs: { forward: median(fwd.wall), step: median(tr.wall) },
    forward,
    train,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);

  const pct = (v: number, of: number) => `${((100 * v) / of).toFixed(1)} %`;
  console.log(`${label} ${method}, ${threads} threads, ${steps - 1} profiled runs each (${nodeRuntime.label})`);
  console.log(`forward: ${forward.runMs} ms a run (kernels ${forward.kernelMs}, outside kernels ${forward.outsideKernelsMs}); ${forwardNodes.size} nodes`);
  console.log(`step:    ${train.runMs} ms a run (kernels ${train.kernelMs}, outside kernels ${train.outsideKernelsMs}); ${trainNodes} nodes; ${(train.runMs / forward.runMs).toFixed(2)}× the forward`);
  console.log('step by phase:');
  for (const [p, v] of Object.entries(train.perPhaseMs)) console.log(`  ${p.padEnd(10)} ${v.toFixed(2).padStart(9)} ms  ${pct(v, train.kernelMs).padStart(7)}   ${Object.entries(train.perPhaseOp[p] ?? {}).slice(0, 6).map(([o, t]) => `${o} ${t.toFixed(2)}`).join(', ')}`);
  console.log('step by op type (top 15):');
  for (const [o, v] of Object.entries(train.perOp).slice(0, 15)) console.log(`  ${o.padEnd(22)} ${v.ms.toFixed(2).padStart(9)} ms  ${pct(v.ms, train.kernelMs).padStart(7)}  ${String(v.calls).padStart(5)} calls`);
  console.log(`wrote ${out}`);
}

await main(process.argv.slice(2));
