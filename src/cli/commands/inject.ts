/** `peanut-onnx inject <model.onnx> -o <adapted.onnx>`: add PEANuT (or LoRA) tweakers. */
import { Command, Option } from 'commander';
import { int, intOption, jsonOption, methodOptions, outputOption, trainableLine } from '../options.ts';

interface Flags {
  output: string;
  targets?: string;
  method?: string;
  rank?: number;
  depth?: number;
  act?: string;
  scaling?: number;
  alpha?: number;
  seed?: number;
  init?: string;
  saveTweaker?: string;
  json?: boolean;
}

export function injectCommand(): Command {
  const cmd = new Command('inject')
    .description('add tweakers to the target layers and write the adapted model (runs in any ONNX runtime as is)')
    .argument('<model>', 'ONNX model to adapt')
    .addOption(outputOption('adapted.onnx', 'where to write the adapted model'))
    .addOption(new Option('--targets <names|regex>', 'module-name suffixes (comma list), a regex fully matched against module paths, or all-linear (default: the architecture default)'));
  for (const o of methodOptions()) cmd.addOption(o);
  return cmd
    .addOption(new Option('--seed <n>', 'seed of the default initialisation (default 0)').argParser(intOption('seed', 0, 0xffffffff)))
    .addOption(new Option('--init <file|dir>', 'start from these parameter values: a tweaker file, a training checkpoint, or a run directory (its latest checkpoint)'))
    .addOption(new Option('--save-tweaker <out.safetensors>', 'also write the parameter values used'))
    .addOption(jsonOption())
    .action(async (modelPath: string, flags: Flags) => {
      const { injectFile } = await import('../../index.ts');
      const { output, json, targets, rank, ...rest } = flags;
      const r = await injectFile(modelPath, output, { ...rest, ...(rank !== undefined ? { r: rank } : {}), ...(targets !== undefined ? { targets } : {}) });
      const layers = r.meta.targets.map((t) => ({ module: t.module, shape: [t.in, t.out], dtype: t.dtype }));
      if (json) {
        const summary = { output, method: r.meta.config, targets: r.meta.targetModules, detected: r.detected ?? null, layers, trainableParams: r.trainableParams, allParams: r.baseParams + r.trainableParams, saveTweaker: flags.saveTweaker ?? null };
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const how = r.detected ? `default targets for ${r.detected.modelType}: ${r.meta.targetModules}` : `targets: ${r.meta.targetModules}`;
      const out: string[] = [];
      if (r.detected) out.push(`architecture: ${r.detected.modelType}, detected from ${r.detected.evidence}`);
      out.push(`adapted ${layers.length} layer(s) with ${r.meta.config.method} (${how}), ${int(r.trainableParams)} trainable parameters:`);
      for (const l of layers) out.push(`  ${l.module}  [${l.shape.join(', ')}] ${l.dtype}`);
      out.push(trainableLine(r.trainableParams, r.baseParams));
      out.push(`wrote ${output}`);
      if (flags.saveTweaker) out.push(`wrote ${flags.saveTweaker}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
