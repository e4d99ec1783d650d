/**
 * `peanut-onnx export-peft <adapted.onnx|checkpoint|run dir> -o <dir>`: write a Hugging Face PEFT
 * adapter (`adapter_config.json` + `adapter_model.safetensors`) loadable by `PeftModel.from_pretrained`.
 */
import { Command } from 'commander';
import { outputOption } from '../options.ts';

interface ExportPeftCliOptions {
  output: string;
  model?: string;
  baseModel?: string;
  taskType?: string;
}

export function exportPeftCommand(): Command {
  return new Command('export-peft')
    .description('write the tweakers as a Hugging Face PEFT adapter directory (adapter_config.json + adapter_model.safetensors)')
    .argument('<source>', 'adapted ONNX model, tweaker/checkpoint .safetensors, run directory (its latest checkpoint) or artifact directory')
    .addOption(outputOption('dir', 'adapter directory to write'))
    .option('--model <adapted.onnx>', 'the adapted model, for a checkpoint that does not record the adapter configuration')
    .option('--base-model <name>', 'base_model_name_or_path to record (e.g. the Hub id of the exported model)')
    .option('--task-type <type>', 'PEFT task_type to record (e.g. SEQ_CLS, CAUSAL_LM; default: from the checkpoint\'s task, else null)')
    .action(async (source: string, o: ExportPeftCliOptions) => {
      const { exportPeft } = await import('../../index.ts');
      const r = exportPeft(source, o.output, {
        ...(o.model ? { model: o.model } : {}),
        ...(o.baseModel ? { baseModel: o.baseModel } : {}),
        ...(o.taskType ? { taskType: o.taskType } : {}),
      });
      const modules = new Set(r.source.params.map((p) => p.name.slice(0, p.name.lastIndexOf('.', p.name.lastIndexOf('.') - 1))));
      const c = r.config;
      const how = c.peft_type === 'PEANUT' ? `r=${String(c.r)} depth=${String(c.depth)} act_fn=${String(c.act_fn)} scaling=${String(c.scaling)}` : `r=${String(c.r)} lora_alpha=${String(c.lora_alpha)}`;
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`exported ${String(c.peft_type)} adapter (${how}) for ${modules.size} module(s), ${r.keys.length} tensors, from ${r.source.from}\nwrote ${r.configPath}\nwrote ${r.weightsPath}\n`);
    });
}
