/** `peanut-onnx average <ckpt>... -o <ckpt>`: the weighted average of θ from several runs of one adapted model. */
import { Command, Option } from 'commander';
import { UsageError } from '../errors.ts';
import { jsonOption, outputOption } from '../options.ts';

interface Flags {
  output: string;
  weights?: number[];
  json?: boolean;
}

/** `--weights 1200,800,…`: one number >= 0 per checkpoint. */
function weightList(value: string): number[] {
  const ws = value.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (ws.some((w) => !Number.isFinite(w) || w < 0)) throw new UsageError(`--weights must be comma-separated numbers >= 0 (e.g. examples per run), got '${value}'`);
  return ws;
}

export function averageCommand(): Command {
  return new Command('average')
    .description('average θ (and the AdamW moments) of several runs of the same adapted model, e.g. clients of a federated round; merge, export-peft and train --resume take the result')
    .argument('<checkpoints...>', 'checkpoint files or run directories (their latest checkpoint), two or more')
    .addOption(outputOption('checkpoint.safetensors', 'where to write the averaged checkpoint'))
    .addOption(new Option('--weights <w,...>', 'one weight per checkpoint, e.g. the examples each run saw (default: equal)').argParser(weightList))
    .addOption(jsonOption())
    .action(async (paths: string[], flags: Flags) => {
      if (paths.length < 2) throw new UsageError(`average needs at least two checkpoints, got ${paths.length}`);
      if (flags.weights && flags.weights.length !== paths.length) throw new UsageError(`--weights gives ${flags.weights.length} weight(s) for ${paths.length} checkpoints; give one per checkpoint`);
      const { averageCheckpoints } = await import('../../index.ts');
      const r = averageCheckpoints(paths, flags.output, flags.weights);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ output: r.path, from: r.from, weights: flags.weights ?? r.from.map(() => 1) }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`averaged ${r.from.length} checkpoints${flags.weights ? ` (weights ${flags.weights.join(', ')})` : ''}\nwrote ${r.path}\n`);
    });
}
