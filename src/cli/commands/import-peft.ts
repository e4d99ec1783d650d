/**
 * `peanut-onnx import-peft <adapter dir> <model.onnx> -o <adapted.onnx>`: adapt an ONNX export with
 * a Hugging Face PEFT adapter (PEANuT, or plain LoRA): the same model `inject --init` would write.
 */
import { Command } from 'commander';
import { outputOption } from '../options.ts';

export function importPeftCommand(): Command {
  return new Command('import-peft')
    .description('inject a Hugging Face PEFT adapter (adapter_config.json + adapter_model.safetensors) into an ONNX export')
    .argument('<adapter>', 'PEFT adapter directory')
    .argument('<model>', 'ONNX model the adapter was trained on')
    .addOption(outputOption('adapted.onnx', 'where to write the adapted model'))
    .action(async (adapterDir: string, modelPath: string, o: { output: string }) => {
      const { importPeftFile } = await import('../../index.ts');
      const r = await importPeftFile(adapterDir, modelPath, o.output);
      const out = [`imported a ${r.meta.config.method} adapter into ${r.meta.targets.length} layer(s) (targets: ${r.meta.targetModules}):`];
      for (const t of r.meta.targets) out.push(`  ${t.module}  [${t.in}, ${t.out}] ${t.dtype}`);
      if (r.outsideTargets.length) out.push(`note: ${r.outsideTargets.length} module(s) hold weights but are not selected by the adapter's target_modules; adapted anyway: ${r.outsideTargets.join(', ')}`);
      out.push(`wrote ${o.output}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
