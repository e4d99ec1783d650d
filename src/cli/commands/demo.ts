/**
 * `peanut-onnx demo [-o <dir>] [--steps N] [...]`: inject → train → merge → evaluate on the model
 * and data the package ships (graphs/), printing what a new user wants to see: eval accuracy
 * before and after, the trainable-parameter budget, merged-vs-adapted agreement, the inference
 * cost of the merged model and where every file went. A thin shell over the library's `runDemo`.
 */
import { Command, Option } from 'commander';
import { CHOICES } from '../../index.ts';
import { choiceOption, epOption, floatOption, int, intOption, jsonOption, outputOption, threadsOption, trainableLine } from '../options.ts';

interface Flags {
  output: string;
  steps?: number;
  method?: string;
  rank?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  ep?: 'auto' | 'cpu' | 'cuda';
  threads?: number;
  json?: boolean;
  web?: boolean;
  port?: number;
}

/** `demo --web`: serves the page until Ctrl-C. */
async function serveWeb(port: number): Promise<void> {
  const { serveWebDemo } = await import('../demo/web-demo.ts');
  const server = await serveWebDemo(port);
  process.stdout.write(`peanut-onnx browser demo: open ${server.origin}/ in a browser (Chrome or Edge for WebGPU); Ctrl-C stops the server\n`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function demoCommand(): Command {
  return new Command('demo')
    .description('fine-tune the shipped pre-trained model on the shipped downstream task: inject → train → merge → evaluate (a few seconds: 300 steps of a 2-layer model)')
    .addOption(outputOption('dir', 'output directory (created; an earlier demo run there is replaced)', false).default('peanut-demo'))
    .option('--steps <n>', 'optimizer steps (default 300)', intOption('--steps', 1))
    .addOption(new Option('--method <name>', 'adapter method (default peanut)').argParser(choiceOption('--method', CHOICES.methods)))
    .option('--rank <r>', 'adapter rank (default 8)', intOption('rank', 1, CHOICES.limits.rank))
    .option('--lr <x>', 'peak learning rate (default 1e-2, linear decay)', floatOption('--lr', 0))
    .option('--batch-size <n>', 'examples per step (default 16)', intOption('--batch-size', 1))
    .option('--seed <n>', 'seed of the adapter initialisation and the data order (default 0)', intOption('--seed', 0))
    .addOption(epOption('execution provider', 'cpu'))
    .addOption(threadsOption())
    .addOption(jsonOption())
    .option('--web', 'serve the browser demo on localhost instead (the same job in a browser tab: onnxruntime-web, wasm or WebGPU) and print its URL')
    .option('--port <n>', 'with --web: the port (default 8642; 0 = any free port)', intOption('--port', 0, 65535))
    .action(async (flags: Flags) => {
      if (flags.web) return serveWeb(flags.port ?? 8642);
      const { runDemo, DEMO_ASSETS } = await import('../demo/run-demo.ts');
      const { createProgress } = await import('../progress.ts');
      const { isAbsolute, relative } = await import('node:path');
      const err = process.stderr;
      const rel = (p: string) => {
        const r = relative(process.cwd(), p);
        return r === '' ? '.' : r.startsWith('..') || isAbsolute(r) ? p : r;
      };
      const progress = createProgress(err);
      // Said once the output folder is accepted (a refused one gets its one error line only).
      let bannerShown = false;
      const banner = () => {
        if (!bannerShown) err.write(`peanut-onnx demo: ${flags.method ?? 'peanut'} on ${rel(DEMO_ASSETS.model)} (pre-trained on a token-majority task), downstream task ${rel(DEMO_ASSETS.train)}\n`);
        bannerShown = true;
      };
      const labels = { inject: '[1/4] inject', train: '[2/4] train', merge: '[3/4] merge', compare: '[4/4] evaluate', timing: '      timing' } as const;
      let trainAnnounced = false;
      try {
        const r = await runDemo({
          outDir: flags.output,
          steps: flags.steps,
          method: flags.method,
          rank: flags.rank,
          lr: flags.lr,
          batchSize: flags.batchSize,
          seed: flags.seed,
          ep: flags.ep,
          threads: flags.threads,
          onEvent: (e) => {
            banner();
            if (e.type === 'phase') {
              if (trainAnnounced) progress.stop(); // the bar ends with training
              err.write(`${labels[e.phase]}  ${e.message}\n`);
            }
            else {
              if (!trainAnnounced) {
                err.write(`${labels.train}  AdamW on the tweaker parameters only (the base model stays frozen)\n`);
                trainAnnounced = true;
              }
              progress.onEvent(e.event);
            }
          },
        });
        progress.stop();
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
          return;
        }
        const lines = [
          '',
          'Results',
          `  eval accuracy       ${pct(r.before.accuracy)} before  →  ${pct(r.after.accuracy)} after ${r.steps} steps (eval loss ${r.before.loss.toFixed(4)} → ${r.after.loss.toFixed(4)})`,
          `  trainable params    ${int(r.trainableParams)} of ${int(r.modelParams)} (${r.trainablePercent.toFixed(2)}% of the model), ${r.method.method} r ${r.method.r} on ${r.targets.length} layers`,
          `                      ${trainableLine(r.trainableParams, r.modelParams)}`,
          `  merged vs adapted   max |Δlogit| = ${r.mergedVsAdaptedMaxDiff.toExponential(2)} (merged model accuracy ${pct(r.mergedAccuracy)})`,
          `  inference time      merged / original = ${r.inference.ratio.toFixed(2)} (${r.inference.mergedMs.toFixed(2)} ms vs ${r.inference.originalMs.toFixed(2)} ms per batch of ${r.inference.batch})`,
          '',
          'Files',
          `  adapted model       ${rel(r.files.adapted)}   (tweakers injected, untrained; runs in any ONNX runtime)`,
          `  training run        ${rel(r.files.run)}/   (checkpoint ${rel(r.files.checkpoint)}, metrics ${rel(r.files.metrics)})`,
          `  merged model        ${rel(r.files.merged)}   (the original graph with W0 + ΔW)`,
          `  report              ${rel(r.files.report)}`,
          '',
          `done in ${r.seconds.total.toFixed(1)} s on ${r.ep} (train ${r.seconds.train.toFixed(1)} s)`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        progress.stop();
      }
    });
}
