/** `peanut-onnx merge <adapted.onnx> -o <merged.onnx>`: fold the tweakers into the weights. */
import { Command, Option } from 'commander';
import { CHOICES } from '../../index.ts';
import { choiceOption, jsonOption, outputOption } from '../options.ts';

interface Flags {
  output: string;
  checkpoint?: string;
  safe?: boolean;
  engine: 'js' | 'ort';
  json?: boolean;
}

export function mergeCommand(): Command {
  return new Command('merge')
    .description('compute W0 + ΔW for every target and write a plain model with the original graph, node for node')
    .argument('<adapted>', 'adapted ONNX model (written by inject)')
    .addOption(outputOption('merged.onnx', 'where to write the merged model'))
    .addOption(new Option('--checkpoint <file|dir>', 'parameter values to merge: a safetensors file, or a run directory (its latest checkpoints/step-<N>.safetensors)'))
    .addOption(new Option('--safe', 'refuse to write a merged weight containing NaN or Inf'))
    .addOption(
      new Option('--engine <name>', "where ΔW is computed: js (float32 loops), or ort (the adapted model's own tweaker nodes in ONNX Runtime; faster at large ranks)")
        .argParser(choiceOption('--engine', CHOICES.mergeEngines))
        .default('js'),
    )
    .addOption(jsonOption())
    .action(async (modelPath: string, flags: Flags) => {
      const { mergeFile } = await import('../../index.ts');
      const r = await mergeFile(modelPath, flags.output, { ...(flags.checkpoint ? { checkpoint: flags.checkpoint } : {}), safe: flags.safe ?? false, engine: flags.engine });
      if (r.zeroDelta) {
        const hint = flags.checkpoint ? 'the checkpoint holds untrained values' : 'pass the trained values with --checkpoint <run dir>';
        process.stderr.write(`note: the parameters give ΔW = 0 (B is all zeros), so the merged weights equal the original ones; ${hint}\n`);
      }
      if (r.unchecked > 0) process.stderr.write(`note: ${r.unchecked} layer(s) not checked for the same base weights: ${r.paramsFrom} or ${modelPath} was written by an older peanut-onnx, without fingerprints\n`);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ output: flags.output, layers: r.meta.targets.map((t) => t.module), paramsFrom: r.paramsFrom, engine: flags.engine, zeroDelta: r.zeroDelta }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`merged ${r.meta.targets.length} layer(s) (parameters from ${r.paramsFrom})\nwrote ${flags.output}\n`);
    });
}
