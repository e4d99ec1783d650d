/**
 * `npm run bench`: the cost of one PEANuT training step (forward + loss + backward + AdamW, one
 * InferenceSession.run of the train graph) relative to a frozen forward pass of the original
 * model on the same batch, in the same runtime, on this machine; plus peak memory. Not a test.
 *
 *   npm run bench [-- --skip-base] [--iters N] [--threads N] [--ep cpu|cuda|auto]
 *
 * Models: the bert_tiny fixture and a bert-base-sized export built in memory by
 * tools/lib/bert.ts (hidden 768, 12 layers). Batch 8 × seq 128, rank 8, targets query,value,
 * depth 0, relu (the setting of the PyTorch reference numbers in the fixtures README).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, encodeModel, type OnnxModel } from '../src/onnx/io.ts';
import { inject } from '../src/peanut/inject.ts';
import { buildArtifacts } from '../src/train/build.ts';
import { trainingSessionOptions } from '../src/train/training-graph.ts';
import { createSession, ort, type EpChoice } from '../src/runtime.ts';
import { buildBertBase } from './lib/bert.ts';

interface Args {
  skipBase: boolean;
  iters: number;
  threads?: number;
  ep: EpChoice;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { skipBase: false, iters: 10, ep: 'cpu' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--skip-base') a.skipBase = true;
    else if (k === '--iters') a.iters = Number(argv[++i]);
    else if (k === '--threads') a.threads = Number(argv[++i]);
    else if (k === '--ep') a.ep = argv[++i] as EpChoice;
    else throw new Error(`unknown argument '${k}'; usage: npm run bench [-- --skip-base] [--iters N] [--threads N] [--ep cpu|cuda|auto]`);
  }
  return a;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

async function bench(name: string, base: OnnxModel, vocab: number, args: Args): Promise<{ name: string; forward: number; step: number; ratio: number; ep: string }> {
  console.log(`\n${name}`);
  const B = 8;
  const T = 128;
  const ids = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T === 0 ? 1 : 3 + ((i * 2654435761) % (vocab - 3))));
  const batch = {
    input_ids: new ort.Tensor('int64', ids, [B, T]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, () => 1n), [B, T]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * T), [B, T]),
  };
  const sessionOpts = trainingSessionOptions({ ep: args.ep, threads: args.threads });

  const frozen = await createSession(encodeModel(base.proto), sessionOpts);

  const t0 = performance.now();
  const adapted = inject(base, { targets: 'query,value', r: 8, depth: 0, act: 'relu', seed: 0 });
  const built = await buildArtifacts(adapted.model, { task: 'seq-cls' });
  console.log(`  inject + build train graph: ${((performance.now() - t0) / 1000).toFixed(1)} s; ${built.graphs.io.params.length} θ tensors, ${[...built.params.values()].reduce((s, t) => s + t.data.length, 0)} trainable parameters`);
  const train = await createSession(encodeModel(built.graphs.train), sessionOpts);
  const feeds: Record<string, ort.Tensor> = { ...batch, labels: new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 2)), [B]) };
  const h = built.manifest.train.inputs.hyperparameters;
  const s = (x: number) => new ort.Tensor('float64', Float64Array.of(x), []);
  Object.assign(feeds, { [h.step]: new ort.Tensor('int64', BigInt64Array.of(1n), []), [h.lr]: s(1e-3), [h.beta1]: s(0.9), [h.beta2]: s(0.999), [h.eps]: s(1e-8), [h.weightDecay]: s(0.01), [h.maxGradNorm]: s(Infinity) });
  for (const [k, t] of built.params) {
    feeds[k] = new ort.Tensor('float32', t.data as Float32Array, t.shape);
    feeds[`adam.m.${k}`] = new ort.Tensor('float32', new Float32Array(t.data.length), t.shape);
    feeds[`adam.v.${k}`] = new ort.Tensor('float32', new Float32Array(t.data.length), t.shape);
  }
  // Forward and step runs alternate, so a machine whose load changes affects both alike.
  const fw: number[] = [];
  const st: number[] = [];
  for (let i = 0; i < 2 + args.iters; i++) {
    let t = performance.now();
    await frozen.session.run(batch);
    if (i >= 2) fw.push(performance.now() - t);
    t = performance.now();
    await train.session.run(feeds);
    if (i >= 2) st.push(performance.now() - t);
  }
  const forward = median(fw);
  const step = median(st);
  const show = (label: string, ms: number[]) =>
    console.log(`  ${label}: median ${median(ms).toFixed(1)} ms (min ${Math.min(...ms).toFixed(1)}, max ${Math.max(...ms).toFixed(1)}, ${ms.length} runs after 2 warm-up)`);
  show(`frozen forward (${frozen.ep})`, fw);
  show(`training step (${train.ep})`, st);
  await frozen.session.release();
  await train.session.release();
  const ratio = step / forward;
  console.log(`  step / frozen forward = ${ratio.toFixed(2)}×   (peak RSS so far ${mb(process.resourceUsage().maxRSS * 1024)})`);
  return { name, forward, step, ratio, ep: train.ep };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(`peanut-onnx bench: onnxruntime-node ${ort.env.versions.node}, Node ${process.version}, threads ${args.threads ?? 'ORT default'}, batch 8 × seq 128, rank 8, targets query,value`);
  const here = fileURLToPath(new URL('.', import.meta.url));
  const results = [await bench('bert_tiny_opset14 (fixture)', loadModel(join(here, '..', 'test', 'fixtures', 'bert_tiny_opset14', 'model.onnx')), 64, args)];
  if (!args.skipBase) results.push(await bench('bert-base-sized (hidden 768, 12 layers; built in memory)', buildBertBase(), 30522, { ...args, iters: Math.min(args.iters, 5) }));
  console.log('\nsummary (target: step ≤ ~2.5× frozen forward; PyTorch 1.13 reference for bert-base-sized: 3.86 s step, 1.64 s forward, 2.35×)');
  for (const r of results) console.log(`  ${r.name}: forward ${r.forward.toFixed(1)} ms, step ${r.step.toFixed(1)} ms, ratio ${r.ratio.toFixed(2)}× on ${r.ep}`);
  console.log(`  peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`);
}

await main();
