/**
 * `peanut-onnx grad <adapted.onnx> --data <file> --task <task> -o <grads.safetensors>`: one
 * forward and backward pass on one batch; writes the loss (`loss`, 0-d F32) and the gradient of
 * every tweaker parameter (`<key>.grad`, the parameter's shape).
 */
import { Command, Option } from 'commander';
import { choiceOption, intOption } from '../options.ts';
import { TASKS, type Task } from '../../train/loss.ts';
import { EP_CHOICES, type EpChoice } from '../../runtime/session.ts';
import type { SafeTensor } from '../../formats/safetensors.ts';
import type { GradModel } from '../../train/grad-model.ts';

interface GradCliOptions {
  data: string;
  task: Task;
  out: string;
  output?: string;
  batchSize?: number;
  ep: EpChoice;
}

export function gradCommand(): Command {
  return new Command('grad')
    .description('compute the loss and the gradient of every tweaker parameter on one batch (no update)')
    .argument('<adapted>', 'adapted ONNX model (from `inject`)')
    .requiredOption('--data <file>', 'one batch: .safetensors (one tensor per input, plus labels) or .jsonl (one example a line)')
    .addOption(new Option('--task <task>', 'task and loss').argParser(choiceOption('--task', TASKS)).makeOptionMandatory())
    .requiredOption('-o, --out <grads.safetensors>', 'where to write the loss and the gradients')
    .option('--output <name>', 'graph output holding the predictions (default: logits)')
    .option('--batch-size <n>', 'use only the first N examples (default: all)', intOption('--batch-size', 1))
    .addOption(new Option('--ep <ep>', 'execution provider').argParser(choiceOption('--ep', EP_CHOICES)).default('cpu'))
    .action(async (modelPath: string, o: GradCliOptions) => {
      const { assertNotInput } = await import('../../node/atomic.ts');
      const { loadModel } = await import('../../node/model-files.ts');
      const { writeSafetensors } = await import('../../formats/safetensors.ts');
      const { buildGradModel } = await import('../../train/grad-model.ts');
      const { runGradModel } = await import('../../train/grad-run.ts');
      const { readBatch, readFeeds } = await import('../../data/read-batch.ts');
      const { feedInputs } = await import('../../runtime/probe.ts');
      const { valueInfoType } = await import('../../onnx/graph.ts');
      const { DataType: DT } = await import('../../onnx/dtype.ts');
      const { PeanutError } = await import('../../errors.ts');
      assertNotInput(o.out, modelPath, o.data);
      const model = loadModel(modelPath);
      const readOpts = { task: o.task, ...(o.batchSize ? { limit: o.batchSize } : {}) };
      const prediction = o.output !== undefined ? { output: o.output } : {};
      let gm: GradModel;
      try {
        gm = await buildGradModel(model, { task: o.task, ...prediction });
      } catch (err) {
        // Synthetic probe batches cannot run this model (input dims tied to each other): probe
        // with the real batch instead; the graph is then built for this batch's shapes.
        if (!(err instanceof PeanutError && err.message.startsWith('shape probing failed'))) throw err;
        const inputs = feedInputs(model.proto).map((v) => ({ name: v.name, elemType: valueInfoType(v)?.elemType ?? 0 }));
        inputs.push({ name: 'labels', elemType: o.task === 'regression' ? DT.FLOAT : DT.INT64 });
        const real = readFeeds(o.data, inputs, 'labels', readOpts);
        gm = await buildGradModel(model, { task: o.task, ...prediction, batch: real, staticShapes: true });
      }
      const batch = readBatch(o.data, gm, readOpts);
      const r = await runGradModel(gm, batch, { ep: o.ep });
      if (!Number.isFinite(r.loss)) throw new PeanutError('E_NON_FINITE', `the loss is ${r.loss}; check the labels and the --task`);
      const tensors = new Map<string, SafeTensor>([['loss', { dtype: 'F32', shape: [], data: Float32Array.of(r.loss) }]]);
      for (const p of gm.params) {
        const g = r.grads.get(p)!;
        tensors.set(`${p}.grad`, { dtype: 'F32', shape: g.dims, data: g.data });
      }
      writeSafetensors(o.out, tensors, { task: o.task, format: 'peanut-onnx grad' });
      const n = batch[gm.labels]?.dims[0] ?? 0;
      process.stdout.write(`loss ${r.loss.toPrecision(7)} on ${n} example(s); ${gm.params.length} gradient tensors\nwrote ${o.out}\n`);
    });
}
