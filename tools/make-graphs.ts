/**
 * Rebuilds what `graphs/` ships (see graphs/README.md):
 *
 *   npx tsx tools/make-graphs.ts [outDir]      (default: graphs/)
 *
 *  1. `bert-tiny.onnx`: a BERT classifier (BERT_TINY_CONFIG) built random-initialised, then
 *     pre-trained on the synthetic `majority` task with full-parameter AdamW through the project's
 *     own autodiff (every float initializer is a trainable parameter of the gradient model).
 *  2. `bert-tiny.pretrain.json`: the pre-training config and its loss/accuracy log.
 *  3. `demo/train.jsonl`, `demo/eval.jsonl`: the downstream `supermajority` task of `peanut-onnx demo`.
 *
 * Everything is a pure function of the configs and seeds in tools/lib/demo-graphs.ts; the
 * pre-training runs single-threaded on the CPU, so the same machine type and onnxruntime version
 * give the same bytes. Takes about a minute.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../src/onnx/model.ts';
import { saveModel } from '../src/node/model-files.ts';
import { ort } from '../src/node/onnxruntime.ts';
import { BERT_TINY_CONFIG, buildBertTinyInit, DEMO_DATA, PRETRAIN, type DataSpec } from './lib/demo-graphs.ts';
import { pretrain } from './lib/pretrain.ts';
import { makeExamples, toJsonl } from './lib/synthetic.ts';

const outDir = process.argv[2] ?? 'graphs';
const data = (s: DataSpec) => makeExamples(s.task, s.examples, s.seed, s.options);

mkdirSync(join(outDir, 'demo'), { recursive: true });
for (const [name, spec] of Object.entries(DEMO_DATA)) {
  const examples = data(spec);
  const path = join(outDir, 'demo', `${name}.jsonl`);
  writeFileSync(path, toJsonl(examples));
  const pos = examples.filter((e) => e.labels === 1).length;
  console.log(`${path}: ${examples.length} examples of '${spec.task}', ${pos} positive`);
}

const init = buildBertTinyInit();
console.log(`pre-training bert-tiny on '${PRETRAIN.train.task}' (${PRETRAIN.steps} steps, batch ${PRETRAIN.batchSize}, lr ${PRETRAIN.lr})…`);
const result = await pretrain(init, data(PRETRAIN.train), data(PRETRAIN.eval), {
  steps: PRETRAIN.steps,
  batchSize: PRETRAIN.batchSize,
  lr: PRETRAIN.lr,
  warmup: PRETRAIN.warmup,
  schedule: PRETRAIN.schedule,
  weightDecay: PRETRAIN.weightDecay,
  gradClip: PRETRAIN.gradClip,
  seed: PRETRAIN.seed,
  evalEvery: PRETRAIN.evalEvery,
  onLog: (l) => console.log(`  step ${l.step}: train loss ${l.loss} (smoothed), eval loss ${l.eval_loss}, eval accuracy ${l.eval_accuracy} (${l.seconds} s)`),
});
const path = join(outDir, 'bert-tiny.onnx');
saveModel(result.model, path, { externalData: false });
const bytes = encodeModel(result.model.proto).byteLength;
console.log(`${path}: ${bytes} bytes, ${result.model.proto.graph!.node.length} nodes, ${result.numParams} parameters pre-trained`);

const record = {
  model: 'bert-tiny.onnx',
  architecture: BERT_TINY_CONFIG,
  pretraining: { ...PRETRAIN, trainableParameters: result.numParams, threads: 1, ep: 'cpu', onnxruntime: ort.env.versions.node ?? 'unknown' },
  final: result.final,
  log: result.log,
  downstream: DEMO_DATA,
};
writeFileSync(join(outDir, 'bert-tiny.pretrain.json'), `${JSON.stringify(record, null, 2)}\n`);
console.log(`${join(outDir, 'bert-tiny.pretrain.json')}: pre-training record`);
