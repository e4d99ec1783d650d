/**
 * Loss heads: the task's loss appended to a model's graph as standard ONNX ops, each of which has
 * a gradient rule (or sits off the gradient path). Hugging Face conventions:
 *
 *  - `seq-cls`, `image-cls`: mean cross-entropy of `logits [B, C]` against int64 `labels [B]`.
 *  - `causal-lm`: `logits[:, :-1]` predicts `labels[:, 1:]`; the shift is done on the labels
 *    (shifted left, −100 appended), so the logits need no Slice. Mean over counted tokens.
 *  - `regression`: mean squared error against float `labels [B]` or `[B, k]`.
 *
 * Labels equal to −100 are ignored by the cross-entropy heads (PyTorch's `ignore_index`). The
 * class picked by a label is a one-hot mask `Equal(labels[..., None], Range(C))` multiplied into
 * `LogSoftmax(logits)`: −100 matches no class, so ignored positions drop out by themselves.
 */
import { PeanutError } from '../errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { DataType as DT, isFloatType } from '../onnx/dtype.ts';
import { makeValueInfo, valueInfoType, type Graph } from '../onnx/graph.ts';
import { reduce, unsqueeze } from '../onnx/ops.ts';
import { IGNORE_INDEX, TASKS, type Task } from '../data/tasks.ts';

export { TASKS, type Task };

export interface LossHeadOptions {
  task: Task;
  /** The prediction value (default: the graph output `logits`, or the only graph output). */
  output?: string;
  /** Opset of the default domain. */
  opset: number;
  /** Name of the labels graph input (default `labels`, made unique). */
  labels?: string;
}

export interface LossHead {
  /** Scalar float32 loss value. */
  loss: string;
  /** The labels graph input added. */
  labels: string;
  /** The prediction value the loss reads. */
  prediction: string;
}

/** The value a loss head reads: `output`, else the graph output `logits`, else the only output. */
export function findPrediction(graph: Graph, output?: string): string {
  const outs = graph.proto.output.map((o) => o.name);
  const list = outs.map((o) => `'${o}'`).join(', ') || '(none)';
  if (output !== undefined) {
    if (outs.includes(output) || graph.producer(output)) return output;
    throw new PeanutError('E_GRAPH', `--head '${output}' is not a value of the model; its graph outputs are ${list}`);
  }
  if (outs.includes('logits')) return 'logits';
  if (outs.length === 1) return outs[0]!;
  throw new PeanutError('E_GRAPH', `cannot tell which output holds the predictions: the model has no output named 'logits'; its graph outputs are ${list}; pass --head NAME`);
}

/**
 * Appends the task's loss to `graph` and declares the labels graph input.
 *
 * @param graph - the model graph (edited in place)
 * @param opts - task, prediction output, opset
 */
export function appendLossHead(graph: Graph, opts: LossHeadOptions): LossHead {
  const { task, opset } = opts;
  if (!(TASKS as readonly string[]).includes(task)) throw new PeanutError('E_BAD_CONFIG', `unknown task '${task}'; valid: ${TASKS.join(', ')}`);
  if (opset < 11) throw new PeanutError('E_BAD_CONFIG', `loss heads need opset 11 or newer; the model imports opset ${opset} (re-export it with a newer opset)`);
  const prediction = findPrediction(graph, opts.output);
  const predInfo = graph.proto.output.find((o) => o.name === prediction) ?? graph.proto.valueInfo.find((o) => o.name === prediction);
  const predType = predInfo ? valueInfoType(predInfo) : undefined;
  const predDtype = predType?.elemType ?? DT.FLOAT;
  if (!isFloatType(predDtype)) throw new PeanutError('E_GRAPH', `prediction '${prediction}' is not a floating tensor; pass --head NAME of the logits`);

  // Labels dims follow the model's token (or first) input: [batch(, seq)].
  const inits = new Set(graph.proto.initializer.map((t) => t.name));
  const dataInputs = graph.proto.input.filter((v) => !inits.has(v.name));
  const first = ['input_ids', 'decoder_input_ids'].map((n) => dataInputs.find((v) => v.name === n)).find(Boolean) ?? dataInputs[0];
  const firstDims = (first && valueInfoType(first)?.dims) ?? [];
  const batchDim = firstDims[0] ?? 'batch_size';
  const seqDim = firstDims[1] ?? 'sequence_length';
  const labels = graph.uniqueName(opts.labels ?? 'labels');
  const b = new GraphBuilder(graph, `/loss/${task}`);

  let x = prediction;
  if (predDtype !== DT.FLOAT) x = b.op('Cast', [x], { to: DT.FLOAT });
  let loss: string;
  if (task === 'regression') {
    const k = predType?.dims?.length === 2 ? predType.dims[1] : undefined;
    graph.proto.input.push(makeValueInfo(labels, DT.FLOAT, typeof k === 'number' && k > 1 ? [batchDim, k] : [batchDim]));
    const target = b.op('Reshape', [labels, b.op('Shape', [x])]);
    const diff = b.op('Sub', [x, target]);
    const sum = reduce({ b, opset }, 'ReduceSum', b.op('Mul', [diff, diff]), 'all', 0);
    loss = b.op('Div', [sum, b.op('Cast', [b.op('Size', [x])], { to: DT.FLOAT })], {}, { outputs: [graph.uniqueName('loss')] });
  } else {
    let target = labels;
    if (task === 'causal-lm') {
      graph.proto.input.push(makeValueInfo(labels, DT.INT64, [batchDim, seqDim]));
      // shifted[:, t] = labels[:, t+1]; the last position gets −100 (no next token)
      const tail = b.op('Slice', [labels, b.constInt64([1]), b.constInt64([Number.MAX_SAFE_INTEGER]), b.constInt64([1])]);
      const firstCol = b.op('Slice', [labels, b.constInt64([0]), b.constInt64([1]), b.constInt64([1])]);
      const pad = b.op('Sub', [b.op('Mul', [firstCol, b.constInt64([0], [])]), b.constInt64([-IGNORE_INDEX], [])]);
      target = b.op('Concat', [tail, pad], { axis: 1 });
    } else {
      graph.proto.input.push(makeValueInfo(labels, DT.INT64, [batchDim]));
    }
    loss = crossEntropy(b, opset, x, target, graph.uniqueName('loss'));
  }
  return { loss, labels, prediction };
}

/**
 * Mean cross-entropy of `logits [..., C]` (float32) against int64 `labels [...]`, skipping −100:
 *   −Σ onehot(labels) · LogSoftmax(logits) / max(1, #counted)
 */
function crossEntropy(b: GraphBuilder, opset: number, logits: string, labels: string, lossName: string): string {
  const e = { b, opset };
  const logp = b.op('LogSoftmax', [logits], { axis: -1 });
  const shape = b.op('Shape', [logits]);
  const classes = b.op('Gather', [shape, b.constInt64([-1], [])], { axis: 0 });
  const range = b.op('Range', [b.constInt64([0], []), classes, b.constInt64([1], [])]);
  const onehot = b.op('Cast', [b.op('Equal', [unsqueeze(e, labels, [-1]), range])], { to: DT.FLOAT });
  const picked = reduce(e, 'ReduceSum', b.op('Mul', [onehot, logp]), 'all', 0);
  const counted = b.op('Cast', [b.op('Not', [b.op('Equal', [labels, b.constInt64([IGNORE_INDEX], [])])])], { to: DT.FLOAT });
  const count = b.op('Max', [reduce(e, 'ReduceSum', counted, 'all', 0), b.scalar(1)]);
  return b.op('Neg', [b.op('Div', [picked, count])], {}, { outputs: [lossName] });
}
