/**
 * `peanut-onnx grad <adapted.onnx> --data <file> --task <task> -o <grads.safetensors>`: one
 * forward and backward pass on one batch; writes the loss (`loss`, 0-d F32) and the gradient of
 * every tweaker parameter (`<key>.grad`, the parameter's shape).
 */
import { Command, Option } from 'commander';
import { epOption, intOption, outputOption, taskOption } from '../options.ts';

interface Flags {
  data: string;
  task: string;
  output: string;
  head?: string;
  batchSize?: number;
  ep?: 'auto' | 'cpu' | 'cuda';
}

export function gradCommand(): Command {
  return new Command('grad')
    .description('compute the loss and the gradient of every tweaker parameter on one batch (no update)')
    .argument('<adapted>', 'adapted ONNX model (from `inject`)')
    .requiredOption('--data <file>', 'one batch: .safetensors (one tensor per input, plus labels) or .jsonl (one example a line)')
    .addOption(taskOption('task and loss', true))
    .addOption(outputOption('grads.safetensors', 'where to write the loss and the gradients'))
    .addOption(new Option('--head <names>', 'graph output(s) holding the predictions, NAME[,NAME] (default: logits; start_logits,end_logits for qa)'))
    .addOption(new Option('--batch-size <n>', 'use only the first N examples (default: all)').argParser(intOption('--batch-size', 1)))
    .addOption(epOption('execution provider', 'cpu'))
    .action(async (modelPath: string, o: Flags) => {
      const { checkOutput, computeGradients, loadModel } = await import('../../index.ts');
      checkOutput(o.output, modelPath, o.data);
      const r = await computeGradients(loadModel(modelPath), {
        data: o.data,
        output: o.output,
        task: o.task as never,
        ...(o.head !== undefined ? { head: o.head } : {}),
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
        ep: o.ep ?? 'cpu',
      });
      for (const w of r.warnings) process.stderr.write(`${w}\n`);
      process.stdout.write(`loss ${r.loss.toPrecision(7)} on ${r.examples} example(s); ${r.params.length} gradient tensors\nwrote ${o.output}\n`);
    });
}
