/**
 * `peanut-onnx artifacts <adapted.onnx> --task <task> -o <dir>`: writes the training artifacts
 * (train.onnx, eval.onnx, checkpoint.safetensors, manifest.json) that `train <dir>` runs from.
 */
import { Command, Option } from 'commander';
import { choiceOption } from '../options.ts';
import { TASK_NAMES } from '../../train/tasks.ts';

export function artifactsCommand(): Command {
  return new Command('artifacts')
    .description('build the training artifacts of an adapted model: train graph (forward, loss, backward, AdamW), eval graph, initial checkpoint, manifest')
    .argument('<adapted>', 'adapted model written by `inject`')
    .addOption(new Option('--task <task>', 'loss to train with').choices(TASK_NAMES).argParser(choiceOption('--task', TASK_NAMES)).makeOptionMandatory())
    .requiredOption('-o, --output <dir>', 'directory to write the artifacts into')
    .action(async (adapted: string, flags: { task: string; output: string }) => {
      const { assertNotInput } = await import('../../node/atomic.ts');
      assertNotInput(flags.output, adapted);
      const { writeArtifactsFor } = await import('../../train/build.ts');
      const m = await writeArtifactsFor(adapted, flags.output, { task: flags.task });
      process.stdout.write(
        `wrote ${flags.output}: ${Object.values(m.files).join(', ')} (task ${m.task}, ${m.train.inputs.params.length} trainable tensors, ` +
          `data inputs ${m.train.inputs.data.map((d) => d.name).join(', ')})\n`,
      );
    });
}
