/**
 * Progress display for `train`: a `cli-progress` bar (step, loss, steps/s, ETA) on a TTY, plain
 * log lines otherwise (CI logs, pipes), so a long run stays readable in both.
 */
import cliProgress from 'cli-progress';
import type { TrainEvent } from '../index.ts';

export interface ProgressSink {
  onEvent(e: TrainEvent): void;
  stop(): void;
}

function fmtEta(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

const fmt = (x: number) => (x === 0 ? '0' : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toFixed(4) : x.toExponential(3));

/**
 * @param out - where lines go (stderr keeps stdout clean for piping).
 * @param tty - draw a bar (default: whether `out` is a TTY).
 */
export function createProgress(out: NodeJS.WriteStream = process.stderr, tty = Boolean(out.isTTY)): ProgressSink {
  let bar: cliProgress.SingleBar | undefined;
  let every = 1;
  let payload: Record<string, string> = { loss: '-', lr: '-', rate: '-', etaStr: '?' };
  const line = (s: string) => {
    if (bar) bar.stop();
    out.write(`${s}\n`);
    if (bar) bar = undefined;
  };
  return {
    onEvent(e) {
      switch (e.type) {
        case 'start': {
          const where = e.epRequested === 'auto' ? `execution provider: ${e.ep} (auto${e.ep === 'cpu' ? ': CUDA not available' : ''})` : `execution provider: ${e.ep}`;
          out.write(`${where}\n`);
          out.write(`${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.startStep}` : 'starting'}: ${e.totalSteps} steps, ${e.examples} examples, ${e.stepsPerEpoch} steps per epoch\n`);
          every = Math.max(1, Math.ceil((e.totalSteps - e.startStep) / 50));
          if (tty) {
            bar = new cliProgress.SingleBar(
              { format: 'step {value}/{total} |{bar}| loss {loss} | lr {lr} | {rate} steps/s | ETA {etaStr}', hideCursor: true, stream: out, clearOnComplete: false },
              cliProgress.Presets.shades_classic,
            );
            bar.start(e.totalSteps, e.startStep, payload);
          }
          break;
        }
        case 'step':
          payload = { loss: fmt(e.loss), lr: fmt(e.lr), rate: e.stepsPerSec.toFixed(2), etaStr: fmtEta(e.etaSec) };
          if (bar) bar.update(e.step, payload);
          else if (e.step % every === 0 || e.step === e.totalSteps) {
            out.write(`step ${e.step}/${e.totalSteps} loss ${fmt(e.loss)} lr ${fmt(e.lr)} grad_norm ${fmt(e.gradNorm)} ${e.stepsPerSec.toFixed(2)} steps/s ETA ${fmtEta(e.etaSec)}\n`);
          }
          break;
        case 'eval': {
          const extra = [e.eval_accuracy !== undefined ? `eval_accuracy ${fmt(e.eval_accuracy)}` : '', e.eval_perplexity !== undefined ? `eval_perplexity ${fmt(e.eval_perplexity)}` : ''].filter(Boolean).join(' ');
          const s = `eval @ step ${e.step}: eval_loss ${fmt(e.eval_loss)}${extra ? ` ${extra}` : ''} (${e.eval_examples} examples)`;
          if (bar) {
            bar.stop();
            out.write(`${s}\n`);
            if (e.step < bar.getTotal()) bar.start(bar.getTotal(), e.step, payload);
            else bar = undefined;
          } else out.write(`${s}\n`);
          break;
        }
        case 'checkpoint':
          if (!bar) out.write(`checkpoint: ${e.path}\n`);
          break;
        case 'warning':
          line(e.message);
          break;
      }
    },
    stop() {
      if (bar) line('');
    },
  };
}
