/**
 * Step times of a training run from its events: the wall time between consecutive step events
 * (the first from the start event), so every runtime is timed the same way — in Node (the bench)
 * and in a page (pages/web.ts). Browser-safe: no node: imports.
 */
import type { TrainEvent } from '../../src/web.ts';

export function stepClock(): { onEvent: (e: TrainEvent) => void; result: () => { stepMs: number[]; firstLoss: number } } {
  const stepMs: number[] = [];
  let last = 0;
  let firstLoss = NaN;
  return {
    onEvent(e) {
      const now = performance.now();
      if (e.type === 'step') {
        stepMs.push(now - last);
        if (Number.isNaN(firstLoss)) firstLoss = e.loss;
      }
      if (e.type === 'start' || e.type === 'step') last = now;
    },
    result: () => ({ stepMs, firstLoss }),
  };
}
