/** The values each choice of the library and the command line can take, in one place. */
import { ACTIVATIONS, DEFAULTS, LIMITS, METHODS } from './adapter/config.ts';
import { TASKS } from './data/tasks.ts';
import { EP_CHOICES } from './node/onnxruntime.ts';
import { SCHEDULES } from './train/schedule.ts';

export const CHOICES = {
  tasks: TASKS,
  methods: METHODS,
  activations: ACTIVATIONS,
  schedules: SCHEDULES,
  /** Execution providers on Node. */
  executionProviders: EP_CHOICES,
  /** Where `merge` computes ΔW. */
  mergeEngines: ['js', 'ort'] as const,
  /** Method defaults (PEFT's). */
  defaults: DEFAULTS,
  /** The largest rank and depth a configuration may ask for. */
  limits: LIMITS,
} as const;
