/**
 * `peanut-onnx inspect <model.onnx>`: the layers an adapter can target (with how each module name
 * was derived and which outputs it reaches), the architecture detected and from what, and why
 * other layers cannot be targeted.
 */
import { Command } from 'commander';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list the linear layers that can be adapted (module path and how it was derived, weight, shape, dtype, parameters, outputs reached), the detected architecture and what it was detected from, and the skipped layers with reasons')
    .argument('<model>', 'ONNX model')
    .option('--json', 'print the report as JSON')
    .option('--targets <names|regex>', 'preview a selection: module-name suffixes (comma list), a regex, or all-linear (default: the architecture default)')
    .option('--method <name>', 'adapter method: peanut or lora', 'peanut')
    .option('--rank <r>', 'rank for the parameter counts', '32')
    .option('--depth <n>', 'PEANuT encoder/decoder pairs for the parameter counts', '0')
    .action(async (modelPath: string, opts: { json?: boolean; targets?: string; method: string; rank: string; depth: string }) => {
      const { loadModel } = await import('../../onnx/io.ts');
      const { inspectModel, formatInspectReport } = await import('../../peanut/inspect.ts');
      const model = loadModel(modelPath);
      const report = inspectModel(model, { method: opts.method, r: opts.rank, depth: opts.depth, targets: opts.targets });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatInspectReport(report)}\n`);
    });
}
