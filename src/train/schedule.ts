/**
 * Learning-rate schedules with Hugging Face `transformers` semantics (`get_scheduler`):
 * the multiplier for optimizer step k (1-based) is `lambda(k − 1)`, i.e. the scheduler has been
 * stepped k − 1 times when step k runs.
 *
 *  - constant: `lambda(s) = s < warmup ? s / warmup : 1`          (HF `constant_with_warmup`)
 *  - linear:   warmup, then `max(0, (total − s) / max(1, total − warmup))`
 *  - cosine:   warmup, then `max(0, 0.5·(1 + cos(π·progress)))`, progress = (s − warmup) / max(1, total − warmup)
 *
 * With `warmup = 0` the constant schedule is exactly the base learning rate (the oracle fixtures).
 */
export type ScheduleName = 'constant' | 'linear' | 'cosine';
export const SCHEDULES: readonly ScheduleName[] = ['constant', 'linear', 'cosine'];

export interface ScheduleOptions {
  schedule: ScheduleName;
  /** Base (peak) learning rate. */
  lr: number;
  warmup: number;
  /** Total number of optimizer steps of the run. */
  totalSteps: number;
}

/** Learning rate used by optimizer step `step` (1-based). */
export function learningRate(step: number, o: ScheduleOptions): number {
  const s = step - 1;
  if (s < o.warmup) return (o.lr * s) / Math.max(1, o.warmup);
  switch (o.schedule) {
    case 'constant':
      return o.lr;
    case 'linear':
      return o.lr * Math.max(0, (o.totalSteps - s) / Math.max(1, o.totalSteps - o.warmup));
    case 'cosine': {
      const progress = (s - o.warmup) / Math.max(1, o.totalSteps - o.warmup);
      return o.lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}
