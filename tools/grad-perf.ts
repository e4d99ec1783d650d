/**
 * Speed of the gradient model (not a CI test): time to build the gradient graph of an adapted
 * model, and one forward+backward run against one forward run of the same batch (base model and
 * adapted model), median of several calls after a warm-up, onnxruntime CPU EP.
 *
 *   npx tsx tools/grad-perf.ts [--model bert-base|bert-tiny] [--batch 8] [--seq 128] [--reps 5] [--threads N]
 *
 * bert-base: a bert-base-sized export built in memory (tools/lib/bert.ts), PEANuT r = 8,
 * depth 0 (PEFT), relu, targets query,value (24 layers), as in the fixtures' timing notes.
 * bert-tiny: the bert_tiny_opset14 fixture with its own tweaker config.
 */
import type { Feeds, Session } from '../src/runtime/session.ts';
import { nodeRuntime } from '../src/node/onnxruntime.ts';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeModel, type OnnxModel } from '../src/onnx/model.ts';
import { loadModel } from '../src/node/model-files.ts';
import { inject } from '../src/adapter/inject.ts';
import { buildGradModel } from '../src/train/grad-model.ts';
import { createSession, ort } from '../src/node/onnxruntime.ts';
import { tensorDims, tensorToFloat32 } from '../src/onnx/tensor.ts';
import { buildBertBase } from './lib/bert.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const which = arg('model', 'bert-base');
const B = Number(arg('batch', '8'));
const S = Number(arg('seq', '128'));
const reps = Number(arg('reps', '5'));
const threads = Number(arg('threads', '0')) || undefined;

function batchFeeds(vocab: number): Feeds {
  const ids = new BigInt64Array(B * S);
  let s = 12345;
  for (let i = 0; i < ids.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    ids[i] = BigInt(1 + (s % (vocab - 1)));
  }
  const labels = BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 2));
  return {
    input_ids: new ort.Tensor('int64', ids, [B, S]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(B * S).fill(1n), [B, S]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * S), [B, S]),
    labels: new ort.Tensor('int64', labels, [B]),
  };
}

interface Timed {
  session: Session;
  feeds: Feeds;
  createS: number;
  times: number[];
}

async function open(bytes: Uint8Array, feeds: Feeds): Promise<Timed> {
  const t0 = performance.now();
  const { session } = await createSession(bytes, { ep: 'cpu', memPattern: false, ...(threads ? { threads } : {}) });
  const createS = (performance.now() - t0) / 1000;
  const use: Feeds = {};
  for (const n of session.inputNames) use[n] = feeds[n]!;
  await session.run(use); // warm-up
  return { session, feeds: use, createS, times: [] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs the sessions in turn, `reps` rounds, so load changes on a shared machine hit all alike. */
async function interleaved(list: Timed[]): Promise<void> {
  for (let i = 0; i < reps; i++) {
    for (const t of list) {
      const s = performance.now();
      await t.session.run(t.feeds);
      t.times.push(performance.now() - s);
    }
  }
  for (const t of list) await t.session.release();
}

async function main(): Promise<void> {
  let base: OnnxModel;
  let config: Parameters<typeof inject>[1];
  let vocab: number;
  if (which === 'bert-tiny') {
    const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'test', 'fixtures', 'bert_tiny_opset14');
    base = loadModel(join(dir, 'model.onnx'));
    config = { r: 4, depth: 0, act: 'relu', scaling: 1, targets: 'query,value' };
    vocab = 64;
  } else {
    const t = performance.now();
    base = buildBertBase();
    console.log(`built bert-base-sized export in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    config = { r: 8, depth: 0, act: 'relu', scaling: 1, targets: 'query,value' };
    vocab = 30522;
  }
  const { model: adapted, meta } = inject(base, config);
  console.log(`${which}: ${meta.targets.length} targets, ${base.proto.graph!.node.length} base nodes`);

  const t0 = performance.now();
  const gm = await buildGradModel(nodeRuntime, adapted, { task: 'seq-cls' });
  const buildS = (performance.now() - t0) / 1000;
  console.log(`buildGradModel: ${buildS.toFixed(2)} s (probe + loss head + backward), ${gm.pathNodes.length} forward nodes differentiated, ${gm.backwardNodes.length} backward nodes`);

  const feeds = batchFeeds(vocab);
  for (const p of gm.params) {
    const init = gm.initialParams.get(p)!;
    feeds[p] = new ort.Tensor('float32', tensorToFloat32(init, gm.model.baseDir), tensorDims(init));
  }
  const baseT = await open(encodeModel(base.proto), feeds);
  const adaptedT = await open(encodeModel(adapted.proto), feeds);
  const gradT = await open(encodeModel(gm.model.proto), feeds);
  await interleaved([baseT, adaptedT, gradT]);
  const [fb, fa, fg] = [median(baseT.times), median(adaptedT.times), median(gradT.times)];
  console.log(`frozen forward (base model):   ${fb.toFixed(1)} ms (session ${baseT.createS.toFixed(1)} s)`);
  console.log(`adapted forward:               ${fa.toFixed(1)} ms (session ${adaptedT.createS.toFixed(1)} s)`);
  console.log(`forward + loss + backward:     ${fg.toFixed(1)} ms (session ${gradT.createS.toFixed(1)} s)`);
  const ratios = gradT.times.map((t, i) => t / baseT.times[i]!);
  console.log(`ratio fwd+bwd / frozen forward = ${(fg / fb).toFixed(2)} (median of per-round ratios ${median(ratios).toFixed(2)}), / adapted forward = ${(fg / fa).toFixed(2)}  (batch ${B}, seq ${S}, ${reps} interleaved rounds, medians)`);
}

await main();
