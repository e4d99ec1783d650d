/**
 * The training sessions' options (train/training-graph.ts `trainingSessionOptions`): memory
 * pattern off, full optimisation, weight prepacking off, and what the caller passes wins.
 */
import { describe, expect, it } from 'vitest';
import { trainingSessionOptions } from '../../src/train/training-graph.ts';

describe('trainingSessionOptions', () => {
  it('turns weight prepacking off by default (a config entry, under onnxruntime\'s `extra`)', () => {
    const o = trainingSessionOptions({ threads: 2 });
    expect(o).toMatchObject({ ep: 'auto', memPattern: false, graphOptimizationLevel: 'all', threads: 2 });
    expect(o.extra).toEqual({ extra: { session: { disable_prepacking: '1' } } });
  });

  it('keeps the caller\'s options and lets the caller turn prepacking back on', () => {
    const o = trainingSessionOptions({ extra: { logSeverityLevel: 0, extra: { session: { disable_prepacking: '0', intra_op_thread_affinities: '1' }, optimization: { x: '1' } } } });
    expect(o.extra).toEqual({ logSeverityLevel: 0, extra: { session: { disable_prepacking: '0', intra_op_thread_affinities: '1' }, optimization: { x: '1' } } });
  });
});
