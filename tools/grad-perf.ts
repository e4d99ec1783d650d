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
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeModel, loadModel, type OnnxModel } from '../src/onnx/io.ts';
import { inject } from '../src/peanut/inject.ts';
import { buildGradModel } from '../src/autodiff/grad-model.ts';
import { createSession, ort } from '../src/runtime.ts';
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

function batchFeeds(vocab: number): Record<string, ort.Tensor> {
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

async function timeRuns(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<{ createS: number; medianMs: number; all: number[] }> {
  const t0 = performance.now();
  const { session } = await createSession(bytes, { ep: 'cpu', memPattern: false, ...(threads ? { threads } : {}) });
  const createS = (performance.now() - t0) / 1000;
  const use: Record<string, ort.Tensor> = {};
  for (const n of session.inputNames) use[n] = feeds[n]!;
  await session.run(use);
  const all: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await session.run(use);
    all.push(performance.now() - t);
  }
  await session.release();
  all.sort((a, b) => a - b);
  return { createS, medianMs: all[Math.floor(all.length / 2)]!, all };
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
  const gm = await buildGradModel(adapted, { task: 'seq-cls' });
  const buildS = (performance.now() - t0) / 1000;
  console.log(`buildGradModel: ${buildS.toFixed(2)} s (probe + loss head + backward), ${gm.pathNodes.length} forward nodes differentiated, ${gm.backwardNodes.length} backward nodes`);

  const feeds = batchFeeds(vocab);
  for (const p of gm.params) {
    const init = gm.initialParams.get(p)!;
    feeds[p] = new ort.Tensor('float32', tensorToFloat32(init, gm.model.baseDir), tensorDims(init));
  }
  const baseT = await timeRuns(encodeModel(base.proto), feeds);
  console.log(`frozen forward (base model):   ${baseT.medianMs.toFixed(1)} ms (session ${baseT.createS.toFixed(1)} s)`);
  const adaptedT = await timeRuns(encodeModel(adapted.proto), feeds);
  console.log(`adapted forward:               ${adaptedT.medianMs.toFixed(1)} ms (session ${adaptedT.createS.toFixed(1)} s)`);
  const gradT = await timeRuns(encodeModel(gm.model.proto), feeds);
  console.log(`forward + loss + backward:     ${gradT.medianMs.toFixed(1)} ms (session ${gradT.createS.toFixed(1)} s)`);
  console.log(`ratio fwd+bwd / frozen forward = ${(gradT.medianMs / baseT.medianMs).toFixed(2)}, / adapted forward = ${(gradT.medianMs / adaptedT.medianMs).toFixed(2)}  (batch ${B}, seq ${S}, ${reps} reps, median)`);
}

await main();
