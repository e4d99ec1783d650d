/**
 * `peanut-onnx inspect <model.onnx>`: the layers an adapter can target (with how each module name
 * was derived and which outputs it reaches), the architecture detected and from what, and why
 * other layers cannot be targeted.
 */
import { Command, Option } from 'commander';
import { jsonOption, methodOptions } from '../options.ts';

interface Flags {
  json?: boolean;
  targets?: string;
  method?: string;
  rank?: number;
  depth?: number;
}

export function inspectCommand(): Command {
  const cmd = new Command('inspect')
    .description('list the linear layers that can be adapted (module path and how it was derived, weight, shape, dtype, parameters, outputs reached), the detected architecture and what it was detected from, and the skipped layers with reasons')
    .argument('<model>', 'ONNX model')
    .addOption(jsonOption())
    .addOption(new Option('--targets <names|regex>', 'preview a selection: module-name suffixes (comma list), a regex, or all-linear (default: the architecture default)'));
  for (const o of methodOptions().filter((o) => ['--method', '--rank', '--depth'].includes(o.long!))) cmd.addOption(o);
  return cmd.action(async (modelPath: string, flags: Flags) => {
    const { loadModel, inspectModel, formatInspectReport } = await import('../../index.ts');
    const report = inspectModel(loadModel(modelPath), { method: flags.method, r: flags.rank, depth: flags.depth, targets: flags.targets });
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatInspectReport(report)}\n`);
  });
}
