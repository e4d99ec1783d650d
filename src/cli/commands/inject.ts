/** `peanut-onnx inject <model.onnx> -o <adapted.onnx>`: add PEANuT (or LoRA) tweakers. */
import { Command } from 'commander';

interface InjectCliOptions {
  output: string;
  targets?: string;
  method: string;
  rank: string;
  depth: string;
  act: string;
  scaling: string;
  alpha: string;
  seed: string;
  init?: string;
  saveTweaker?: string;
}

export function injectCommand(): Command {
  return new Command('inject')
    .description('add tweakers to the target layers and write the adapted model (runs in any ONNX runtime as is)')
    .argument('<model>', 'ONNX model to adapt')
    .requiredOption('-o, --output <adapted.onnx>', 'where to write the adapted model')
    .option('--targets <names|regex>', 'module-name suffixes (comma list), a regex fully matched against module paths, or all-linear (default: the architecture default)')
    .option('--method <name>', 'adapter method: peanut or lora', 'peanut')
    .option('--rank <r>', 'tweaker rank r', '32')
    .option('--depth <n>', 'PEANuT encoder/decoder pairs', '0')
    .option('--act <name>', 'PEANuT activation: relu, gelu, gelu_tanh, silu, tanh, sigmoid', 'relu')
    .option('--scaling <s>', 'PEANuT scaling of ΔW', '1')
    .option('--alpha <a>', 'LoRA alpha (ΔW scaled by alpha/r)', '8')
    .option('--seed <n>', 'seed of the default initialisation', '0')
    .option('--init <tweaker.safetensors>', 'start from these parameter values (PEFT keys) instead of the default initialisation')
    .option('--save-tweaker <out.safetensors>', 'also write the parameter values used')
    .action(async (modelPath: string, o: InjectCliOptions) => {
      const { checkOutputPath } = await import('./_output.ts');
      const { loadModel, saveModel } = await import('../../onnx/io.ts');
      const { readSafetensors } = await import('../../safetensors.ts');
      const { inject } = await import('../../peanut/inject.ts');
      const { resolveMethodConfig, resolveSeed } = await import('../../peanut/config.ts');
      const { writeTweakerState } = await import('../../peanut/state.ts');
      const { paramNames } = await import('../../peanut/adapter-meta.ts');
      // Validate the configuration before touching any file.
      const methodOptions = { method: o.method, r: o.rank, depth: o.depth, act: o.act, scaling: o.scaling, alpha: o.alpha };
      resolveMethodConfig(methodOptions);
      resolveSeed(o.seed);
      checkOutputPath(o.output, modelPath, o.init);
      if (o.saveTweaker) checkOutputPath(o.saveTweaker, modelPath, o.init, o.output);
      const model = loadModel(modelPath);
      const init = o.init ? readSafetensors(o.init).tensors : undefined;
      const result = inject(model, { ...methodOptions, seed: o.seed, targets: o.targets, ...(init ? { init, initName: o.init } : {}) });
      saveModel(result.model, o.output);
      const n = result.meta.targets.length;
      const total = paramNames(result.meta).reduce((s, k) => s + result.state.get(k)!.length, 0);
      const how = result.detected ? `default targets for ${result.detected.modelType}: ${result.meta.targetModules}` : `targets: ${result.meta.targetModules}`;
      const out: string[] = [];
      if (result.detected) out.push(`architecture: ${result.detected.modelType}, detected from ${result.detected.evidence}`);
      out.push(`adapted ${n} layer(s) with ${result.meta.config.method} (${how}), ${total.toLocaleString('en-US')} trainable parameters:`);
      for (const t of result.meta.targets) out.push(`  ${t.module}  [${t.in}, ${t.out}] ${t.dtype}`);
      out.push(`wrote ${o.output}`);
      if (o.saveTweaker) {
        writeTweakerState(o.saveTweaker, result.meta, result.state);
        out.push(`wrote ${o.saveTweaker}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
