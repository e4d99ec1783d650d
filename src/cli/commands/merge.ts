/** `peanut-onnx merge <adapted.onnx> -o <merged.onnx>`: fold the tweakers into the weights. */
import { Command, Option } from 'commander';

export function mergeCommand(): Command {
  return new Command('merge')
    .description('compute W0 + ΔW for every target and write a plain model with the original graph, node for node')
    .argument('<adapted>', 'adapted ONNX model (written by inject)')
    .requiredOption('-o, --output <merged.onnx>', 'where to write the merged model')
    .option('--checkpoint <file|dir>', 'parameter values to merge: a safetensors file, or a run directory (its latest checkpoints/step-<N>.safetensors)')
    .option('--safe', 'refuse to write a merged weight containing NaN or Inf')
    .addOption(new Option('--engine <name>', 'where ΔW is computed: js (float32 loops), or ort (the adapted model\'s own tweaker nodes in ONNX Runtime; faster at large ranks)').choices(['js', 'ort']).default('js'))
    .action(async (modelPath: string, o: { output: string; checkpoint?: string; safe?: boolean; engine: 'js' | 'ort' }) => {
      const { checkOutputPath } = await import('./_output.ts');
      const { loadModel, saveModel } = await import('../../node/model-files.ts');
      const { merge, requireAdapter } = await import('../../adapter/merge.ts');
      const { mergeWithRuntime } = await import('../../runtime/merge-ort.ts');
      const { readTweakerState, resolveCheckpoint } = await import('../../adapter/state.ts');
      checkOutputPath(o.output, modelPath, o.checkpoint);
      const model = loadModel(modelPath);
      const meta = requireAdapter(model);
      let params: Map<string, Float32Array> | undefined;
      let source = 'the adapted model';
      if (o.checkpoint) {
        const file = resolveCheckpoint(o.checkpoint);
        params = readTweakerState(file, meta.targets.flatMap((t) => t.params), { allowExtra: true });
        source = file;
      }
      const opts = { ...(params ? { params } : {}), safe: o.safe ?? false };
      // The JS engine streams: each merged weight is computed as saveModel writes it.
      const merged = o.engine === 'ort' ? await mergeWithRuntime(model, opts) : merge(model, { ...opts, stream: true });
      saveModel(merged, o.output);
      process.stdout.write(`merged ${meta.targets.length} layer(s) (parameters from ${source})\nwrote ${o.output}\n`);
    });
}
