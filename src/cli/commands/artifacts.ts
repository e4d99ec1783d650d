/**
 * `peanut-onnx artifacts <adapted.onnx> --task <task> -o <dir>`: writes the training artifacts
 * (train.onnx, eval.onnx, checkpoint.safetensors, manifest.json) that `train <dir>` runs from.
 */
import { Command } from 'commander';
import { outputOption, taskOption } from '../options.ts';

export function artifactsCommand(): Command {
  return new Command('artifacts')
    .description('build the training artifacts of an adapted model: train graph (forward, loss, backward, AdamW), eval graph, initial checkpoint, manifest')
    .argument('<adapted>', 'adapted model written by `inject`')
    .addOption(taskOption('loss to train with', true))
    .addOption(outputOption('dir', 'directory to write the artifacts into'))
    .option('--head <names>', 'graph output(s) holding the predictions, NAME[,NAME] (default: logits; start_logits,end_logits for qa)')
    .action(async (adapted: string, flags: { task: string; output: string; head?: string }) => {
      const { writeArtifacts } = await import('../../index.ts');
      const m = await writeArtifacts(adapted, flags.output, { task: flags.task, ...(flags.head !== undefined ? { head: flags.head } : {}) });
      for (const w of m.warnings) process.stderr.write(`${w}\n`);
      process.stdout.write(
        `wrote ${flags.output}: ${Object.values(m.files).join(', ')} (task ${m.task}, ${m.train.inputs.params.length} trainable tensors, ` +
          `data inputs ${m.train.inputs.data.map((d) => d.name).join(', ')})\n`,
      );
    });
}
