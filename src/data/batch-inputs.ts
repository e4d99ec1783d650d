/** Which inputs a plain model's batches carry: its data inputs (with their roles) plus the task's labels. */
import { DataType as DT } from '../onnx/dtype.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { describeInputs, type InputSpec } from './model-inputs.ts';
import { isTask, TASK_INFO, type LabelInput } from './tasks.ts';

/** The label inputs a task's loss adds to a model (named as their data fields). */
export function taskLabels(task: string): LabelInput[] {
  const fields = isTask(task) ? TASK_INFO[task].labelFields : ['labels'];
  return fields.map((f) => ({ name: f, field: f }));
}

/**
 * The inputs a model's batches carry: its data inputs (with their roles, so collation fills
 * masks, position ids and empty caches the data leaves out) plus the labels.
 *
 * @param opts.exclude - model inputs to leave out (e.g. θ of a gradient model)
 * @param opts.labels - the label inputs and their data fields (default: the task's fields)
 */
export function batchInputs(model: OnnxModel, opts: { task: string; exclude?: ReadonlySet<string>; labels?: readonly LabelInput[] }): { inputs: InputSpec[]; labels: LabelInput[] } {
  const labels = [...(opts.labels ?? taskLabels(opts.task))];
  const inputs = describeInputs(model.proto.graph!, opts.exclude);
  for (const l of labels) if (!inputs.some((i) => i.name === l.name)) inputs.push({ name: l.name, elemType: opts.task === 'regression' ? DT.FLOAT : DT.INT64, role: 'data' });
  return { inputs, labels };
}
