/** The tasks a training graph can be built for (DESIGN.md section 3, "Tasks and losses"). */
export const TASK_NAMES = ['seq-cls', 'causal-lm', 'image-cls', 'regression'] as const;
export type TaskName = (typeof TASK_NAMES)[number];
