/** The tasks a training graph can be built for (DESIGN.md section 3; loss heads in src/tasks/loss.ts). */
export { TASKS as TASK_NAMES, type Task as TaskName } from './loss.ts';
