/**
 * Writes a bert-base-sized BertForSequenceClassification-like export (hidden 768, 12 layers,
 * 12 heads, intermediate 3072, vocab 30522, 512 positions, 2 labels, opset 14, seed 1101; about
 * 440 MB) for benchmarks and speed checks. Never committed.
 *
 *   npx tsx tools/make-bert-base.ts <out.onnx> [--external-data] [--opset 14|17|20] [--seed N]
 *
 * With --external-data the tensors go to `<out.onnx>_data` beside the model.
 */
import { saveModel } from '../src/node/model-files.ts';
import { buildBertBase } from './lib/bert.ts';
import type { Opset } from './lib/export-context.ts';

function main(argv: string[]): number {
  const args = [...argv];
  let out: string | undefined;
  let external = false;
  let opset: Opset = 14;
  let seed = 1101;
  while (args.length) {
    const a = args.shift()!;
    if (a === '--external-data') external = true;
    else if (a === '--opset') {
      const v = Number(args.shift());
      if (v !== 14 && v !== 17 && v !== 18 && v !== 20) {
        console.error(`--opset must be one of 14, 17, 18, 20 (got ${v})`);
        return 2;
      }
      opset = v;
    } else if (a === '--seed') seed = Number(args.shift());
    else if (a === '--help' || a === '-h') {
      console.log('usage: tsx tools/make-bert-base.ts <out.onnx> [--external-data] [--opset 14|17|18|20] [--seed N]');
      return 0;
    } else if (!a.startsWith('-') && out === undefined) out = a;
    else {
      console.error(`unknown argument '${a}'; usage: tsx tools/make-bert-base.ts <out.onnx> [--external-data] [--opset N] [--seed N]`);
      return 2;
    }
  }
  if (!out) {
    console.error('usage: tsx tools/make-bert-base.ts <out.onnx> [--external-data] [--opset 14|17|18|20] [--seed N]');
    return 2;
  }
  const t0 = performance.now();
  const model = buildBertBase({ opset, seed });
  const t1 = performance.now();
  saveModel(model, out, { externalData: external });
  const t2 = performance.now();
  const params = model.proto.graph!.initializer.reduce((s, t) => s + t.dims.reduce((a, d) => a * Number(d), 1), 0);
  console.log(`${out}: ${params} parameters, ${model.proto.graph!.node.length} nodes, opset ${opset}, seed ${seed}${external ? ', external data' : ''}; built in ${((t1 - t0) / 1000).toFixed(2)} s, written in ${((t2 - t1) / 1000).toFixed(2)} s`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
