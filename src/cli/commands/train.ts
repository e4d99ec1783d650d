/**
 * `peanut-onnx train <dir|adapted.onnx> --data <file> -o <run dir> [...]`: fine-tunes the tweaker
 * parameters (DESIGN.md section 4). A thin shell over the library's `train()`: it parses flags,
 * draws the progress bar (plain log lines when stdout is not a TTY) and turns Ctrl-C (SIGINT) and
 * SIGTERM into a clean stop: the step in flight finishes, a checkpoint is saved, and the command
 * exits 130 / 143 saying how to continue (`--resume`).
 */
import { Command, Option } from 'commander';
import { CHOICES, type TrainOptions } from '../../index.ts';
import { ExitStatus } from '../errors.ts';
import { choiceOption, epOption, floatOption, fmt, intOption, jsonOption, outputOption, taskOption, threadsOption } from '../options.ts';

/** The signals that stop a run cleanly, and the exit status each gives (128 + its number). */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const SIGNAL_EXIT: Record<NodeJS.Signals, number> = { SIGINT: 130, SIGTERM: 143 } as Record<NodeJS.Signals, number>;

/** Parsed flags: the library's options, with the run directory under its flag name `--output`. */
type Flags = Omit<TrainOptions, 'outDir' | 'signal' | 'onEvent'> & { output: string; json?: boolean };

export function trainCommand(): Command {
  return new Command('train')
    .description('fine-tune the tweaker parameters with AdamW (forward, backward and update in one ONNX Runtime call per step)')
    .argument('<source>', 'training artifact directory (from `artifacts`) or an adapted .onnx')
    .requiredOption('--data <file>', 'training data: .jsonl (input_ids/labels, or text with --tokenizer) or .safetensors')
    .addOption(outputOption('dir', 'run directory: checkpoints/ and metrics.jsonl are written here'))
    .option('--eval <file>', 'evaluation data (same formats as --data)')
    .addOption(taskOption('task (required with an adapted .onnx; artifacts know theirs)', false))
    .option('--head <names>', 'graph output(s) holding the predictions, NAME[,NAME] (default: logits; start_logits,end_logits for qa)')
    .addOption(new Option('--epochs <n>', 'number of epochs (default 1)').argParser(intOption('--epochs', 1)).conflicts('steps'))
    .option('--steps <n>', 'number of optimizer steps (instead of --epochs)', intOption('--steps', 1))
    .option('--batch-size <n>', 'examples per step (default 8)', intOption('--batch-size', 1))
    .option('--lr <x>', 'peak learning rate (default 1e-3)', floatOption('--lr', 0))
    .option('--weight-decay <x>', 'AdamW decoupled weight decay (default 0.01)', floatOption('--weight-decay', 0))
    .option('--warmup <n>', 'linear warmup steps (default 0)', intOption('--warmup', 0))
    .addOption(new Option('--schedule <name>', `learning-rate schedule after warmup: ${CHOICES.schedules.join(', ')} (default linear)`).argParser(choiceOption('--schedule', CHOICES.schedules)))
    .option('--grad-clip <x>', 'clip the global gradient norm to this value (default: no clipping)', floatOption('--grad-clip', 0))
    .option('--seed <n>', 'seed of the data order (default 0)', intOption('--seed', 0))
    .option('--no-shuffle', 'visit the examples in file order every epoch')
    .addOption(epOption('execution provider: auto = CUDA when available, else CPU', 'auto'))
    .option('--resume', 'continue from the latest checkpoint in the run directory')
    .option('--force', 'with --resume: continue even where the settings differ from the run\'s (lists the changes)')
    .option('--log <file>', 'metrics log, one JSON object per step (default <run dir>/metrics.jsonl)')
    .option('--save-every <n>', 'save a checkpoint every N steps (default 500; 0 = only at the end)', intOption('--save-every', 0))
    .option('--keep-checkpoints <n>', 'keep only the newest N checkpoints (default: all)', intOption('--keep-checkpoints', 1))
    .option('--eval-every <n>', 'evaluate every N steps (default: at the start and the end only)', intOption('--eval-every', 0))
    .option('--tokenizer <file>', 'tokenizer.json for JSONL examples given as text')
    .option('--max-length <n>', 'truncate sequences to N tokens', intOption('--max-length', 1))
    .addOption(threadsOption())
    .addOption(jsonOption())
    .action(async (source: string, flags: Flags, cmd: Command) => {
      // An explicit `--shuffle` default would hide whether the user asked for it; on --resume only
      // flags given on the command line override the checkpoint's settings.
      const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
      const { train } = await import('../../index.ts');
      const { createProgress } = await import('../progress.ts');
      const progress = createProgress();
      const abort = new AbortController();
      // Ctrl-C (SIGINT) and SIGTERM (a service manager, `kill`, a batch scheduler) stop the same
      // way: the step in flight finishes, a checkpoint is saved, and the command exits 128 + the
      // signal's number (130, 143), so `train && merge` never merges a partial run.
      let stoppedBy: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        if (abort.signal.aborted) process.exit(SIGNAL_EXIT[signal]); // a second signal: stop now
        stoppedBy = signal;
        process.stderr.write(`\n${signal === 'SIGINT' ? 'interrupt' : 'terminated'}: finishing the current step and saving a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)\n`);
        abort.abort();
      };
      for (const sig of SIGNALS) process.on(sig, onSignal);
      try {
        const { output, json, ...options } = flags;
        const r = await train(source, {
          ...options,
          outDir: output,
          shuffle: given('shuffle') ? flags.shuffle : undefined,
          signal: abort.signal,
          onEvent: (e) => progress.onEvent(e),
        });
        progress.stop();
        for (const c of r.changed) process.stderr.write(`note: continuing with ${c}\n`);
        if (r.interrupted) {
          const why = `interrupted at step ${r.step}/${r.totalSteps}; checkpoint ${r.checkpoint}; continue with the same command plus --resume`;
          if (json) {
            const { params: _, ...summary } = r;
            process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
          }
          throw new ExitStatus(SIGNAL_EXIT[stoppedBy ?? 'SIGINT'], why);
        }
        if (json) {
          const { params: _, ...summary } = r;
          process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        } else if (!r.interrupted) {
          const loss = r.lastLoss === undefined ? '-' : fmt(r.lastLoss);
          const evalLine = r.evals.at(-1);
          const ev = evalLine ? `; eval loss ${fmt(evalLine.eval_loss)}${evalLine.eval_accuracy !== undefined ? `, accuracy ${(100 * evalLine.eval_accuracy).toFixed(1)}%` : ''}${evalLine.eval_perplexity !== undefined ? `, perplexity ${fmt(evalLine.eval_perplexity)}` : ''}` : '';
          process.stdout.write(`trained ${r.step} steps on ${r.ep}; final loss ${loss}${ev}; checkpoint ${r.checkpoint}; metrics ${r.metricsLog}\n`);
        }
      } finally {
        progress.stop();
        for (const sig of SIGNALS) process.off(sig, onSignal);
      }
    });
}
