/**
 * Loss heads: the task's loss appended to a model's graph as standard ONNX ops, each of which has
 * a gradient rule (or sits off the gradient path). Hugging Face conventions:
 *
 *  - `seq-cls`, `image-cls`: mean cross-entropy of `logits [B, C]` against int64 `labels [B]`.
 *  - `token-cls`, `masked-lm`: mean cross-entropy of `logits [B, T, C]` against `labels [B, T]`
 *    over the labels that are not −100 (`*ForTokenClassification`, `*ForMaskedLM`).
 *  - `causal-lm`: `logits[:, :-1]` predicts `labels[:, 1:]`; the shift is done on the labels
 *    (shifted left, −100 appended), so the logits need no Slice. Mean over counted tokens.
 *  - `qa`: `(CE(start_logits, start_positions) + CE(end_logits, end_positions)) / 2`, positions
 *    clamped to [0, T] and T ignored, as `*ForQuestionAnswering` does (T = the sequence length of
 *    the logits; a negative position therefore counts as 0, one past the sequence is skipped).
 *  - `regression`: mean squared error against float `labels [B]` or `[B, k]`.
 *
 * Labels equal to the ignored value are skipped (PyTorch's `ignore_index`). The class picked by a
 * label is a one-hot mask `Equal(labels[..., None], Range(C))` multiplied into
 * `LogSoftmax(logits)`: an ignored label (−100, or T for QA) matches no class, so ignored
 * positions drop out by themselves. A batch whose labels are all ignored has loss 0 (PyTorch
 * gives NaN there).
 */
import { PeanutError } from '../errors.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { DataType as DT, dtypeName, isFloatType } from '../onnx/dtype.ts';
import { makeValueInfo, valueInfoType, type Graph } from '../onnx/graph.ts';
import { reduce, unsqueeze } from '../onnx/ops.ts';
import type { ValueInfoProto } from '../onnx/proto.ts';
import { IGNORE_INDEX, TASK_INFO, TASKS, type LabelInput, type Task } from '../data/tasks.ts';
import { isCacheOutput } from '../data/model-inputs.ts';

export { TASKS, type Task };

export interface LossHeadOptions {
  task: Task;
  /** The prediction values (default: the task's output names, e.g. `logits`, or the only output). */
  heads?: readonly string[];
  /** Opset of the default domain. */
  opset: number;
}

export interface LossHead {
  /** Scalar float32 loss value. */
  loss: string;
  /** The label graph inputs added, with the data fields that fill them. */
  labels: LabelInput[];
  /** The prediction values the loss reads, in the task's order (QA: start, end). */
  predictions: string[];
}

/** `'name' [dims]` for messages. */
function describeOutput(v: ValueInfoProto): string {
  const t = valueInfoType(v);
  const dims = t?.dims ? ` [${t.dims.map((d) => d ?? '?').join(', ')}]` : '';
  return `'${v.name}'${dims}`;
}

/** The rank of the predictions a task reads (QA: [B, T] each). */
const HEAD_RANK: Record<Task, number[]> = {
  'seq-cls': [2],
  'image-cls': [2],
  regression: [1, 2],
  'token-cls': [3],
  'masked-lm': [3],
  'causal-lm': [3],
  qa: [2],
};

/**
 * The values a task's loss reads: `names` (each a graph output or an inner value), else the
 * task's default output names, else the only output that is not a cache. @throws PeanutError
 * E_GRAPH listing the graph's outputs and the `--head` flag to pass.
 */
export function findHeads(graph: Graph, task: Task, names?: readonly string[]): string[] {
  const want = TASK_INFO[task].defaultHeads;
  const outputs = graph.proto.output;
  const list = outputs.map(describeOutput).join(', ') || '(none)';
  const float = outputs.filter((o) => !isCacheOutput(o.name) && isFloatType(valueInfoType(o)?.elemType ?? DT.FLOAT));
  // A suggestion: the outputs whose rank fits the task, when they are exactly as many as it reads.
  const fitting = float.filter((o) => {
    const r = valueInfoType(o)?.dims?.length;
    return r === undefined || HEAD_RANK[task].includes(r);
  });
  const flag = fitting.length === want.length ? `pass --head ${fitting.map((o) => o.name).join(',')}` : `pass --head ${want.length === 2 ? 'START,END (the two outputs holding the start and end logits)' : 'NAME (the output holding the logits)'}`;
  const count = want.length === 2 ? 'two outputs (start and end logits)' : 'one output';
  if (names !== undefined && names.length > 0) {
    if (names.length !== want.length) throw new PeanutError('E_BAD_CONFIG', `--task ${task} reads ${count}, but --head names ${names.length}; the graph outputs are ${list}; ${flag}`);
    for (const n of names) {
      if (!outputs.some((o) => o.name === n) && !graph.producer(n)) throw new PeanutError('E_GRAPH', `--head '${n}' is not a value of the model; its graph outputs are ${list}; ${flag}`);
    }
    return [...names];
  }
  if (want.every((n) => outputs.some((o) => o.name === n))) return [...want];
  if (want.length === 1 && float.length === 1) return [float[0]!.name];
  const missingNames = want.filter((n) => !outputs.some((o) => o.name === n)).map((n) => `'${n}'`).join(' and ');
  throw new PeanutError('E_GRAPH', `cannot find the head of --task ${task}: the model has no output named ${missingNames}; its graph outputs are ${list}; ${flag}`);
}

/**
 * Appends the task's loss to `graph` and declares the label graph inputs.
 *
 * @param graph - the model graph (edited in place)
 * @param opts - task, prediction outputs, opset
 */
export function appendLossHead(graph: Graph, opts: LossHeadOptions): LossHead {
  const { task, opset } = opts;
  if (!(TASKS as readonly string[]).includes(task)) throw new PeanutError('E_BAD_CONFIG', `unknown task '${task}'; valid: ${TASKS.join(', ')}`);
  if (opset < 11) throw new PeanutError('E_BAD_CONFIG', `loss heads need opset 11 or newer; the model imports opset ${opset} (re-export it with a newer opset)`);
  const predictions = findHeads(graph, task, opts.heads);
  const infoOf = (name: string) => graph.proto.output.find((o) => o.name === name) ?? graph.proto.valueInfo.find((o) => o.name === name);
  const types = predictions.map((p) => {
    const info = infoOf(p);
    const t = info ? valueInfoType(info) : undefined;
    const dtype = t?.elemType ?? DT.FLOAT;
    if (!isFloatType(dtype)) throw new PeanutError('E_GRAPH', `head '${p}' is ${dtypeName(dtype)}, not a floating tensor; pass --head NAME of the logits`);
    return { dtype, dims: t?.dims };
  });

  // Label dims follow the model's token (or first) input: [batch(, seq)].
  const inits = new Set(graph.proto.initializer.map((t) => t.name));
  const dataInputs = graph.proto.input.filter((v) => !inits.has(v.name));
  const first = ['input_ids', 'decoder_input_ids'].map((n) => dataInputs.find((v) => v.name === n)).find(Boolean) ?? dataInputs[0];
  const firstDims = (first && valueInfoType(first)?.dims) ?? [];
  const batchDim = firstDims[0] ?? 'batch_size';
  const seqDim = firstDims[1] ?? 'sequence_length';
  const b = new GraphBuilder(graph, `/loss/${task}`);
  const labels: LabelInput[] = TASK_INFO[task].labelFields.map((field) => ({ name: graph.uniqueName(field), field }));
  const declare = (name: string, dtype: number, dims: ReadonlyArray<number | string | null>) => graph.proto.input.push(makeValueInfo(name, dtype, dims));

  const logits = predictions.map((p, i) => (types[i]!.dtype !== DT.FLOAT ? b.op('Cast', [p], { to: DT.FLOAT }) : p));
  const lossName = graph.uniqueName('loss');
  let loss: string;
  switch (task) {
    case 'regression': {
      const x = logits[0]!;
      const dims = types[0]!.dims;
      const k = dims?.length === 2 ? dims[1] : undefined;
      declare(labels[0]!.name, DT.FLOAT, typeof k === 'number' && k > 1 ? [batchDim, k] : [batchDim]);
      const target = b.op('Reshape', [labels[0]!.name, b.op('Shape', [x])]);
      const diff = b.op('Sub', [x, target]);
      const sum = reduce({ b, opset }, 'ReduceSum', b.op('Mul', [diff, diff]), 'all', 0);
      loss = b.op('Div', [sum, b.op('Cast', [b.op('Size', [x])], { to: DT.FLOAT })], {}, { outputs: [lossName] });
      break;
    }
    case 'causal-lm': {
      const y = labels[0]!.name;
      declare(y, DT.INT64, [batchDim, seqDim]);
      // shifted[:, t] = labels[:, t+1]; the last position gets −100 (no next token)
      const tail = b.op('Slice', [y, b.constInt64([1]), b.constInt64([Number.MAX_SAFE_INTEGER]), b.constInt64([1])]);
      const firstCol = b.op('Slice', [y, b.constInt64([0]), b.constInt64([1]), b.constInt64([1])]);
      const pad = b.op('Sub', [b.op('Mul', [firstCol, b.constInt64([0], [])]), b.constInt64([-IGNORE_INDEX], [])]);
      const target = b.op('Concat', [tail, pad], { axis: 1 });
      loss = crossEntropy(b, opset, logits[0]!, target, b.constInt64([IGNORE_INDEX], []), lossName);
      break;
    }
    case 'token-cls':
    case 'masked-lm':
      declare(labels[0]!.name, DT.INT64, [batchDim, seqDim]);
      loss = crossEntropy(b, opset, logits[0]!, labels[0]!.name, b.constInt64([IGNORE_INDEX], []), lossName);
      break;
    case 'qa': {
      const halves = labels.map((l, i) => {
        declare(l.name, DT.INT64, [batchDim]);
        return crossEntropy(b, opset, logits[i]!, ...clampedPositions(b, logits[i]!, l.name));
      });
      loss = b.op('Mul', [b.op('Add', [halves[0]!, halves[1]!]), b.scalar(0.5)], {}, { outputs: [lossName] });
      break;
    }
    default:
      declare(labels[0]!.name, DT.INT64, [batchDim]);
      loss = crossEntropy(b, opset, logits[0]!, labels[0]!.name, b.constInt64([IGNORE_INDEX], []), lossName);
  }
  return { loss, labels, predictions };
}

/**
 * HF's QA positions: `clamp(positions, 0, T)` with T = logits.size(1), and T the ignored value.
 * (Less/Greater/Where, which take int64 from opset 9, rather than Clip, which takes it from 12.)
 */
function clampedPositions(b: GraphBuilder, logits: string, positions: string): [string, string] {
  const T = b.op('Gather', [b.op('Shape', [logits]), b.constInt64([1], [])], { axis: 0 });
  const zero = b.constInt64([0], []);
  const low = b.op('Where', [b.op('Less', [positions, zero]), zero, positions]);
  const clamped = b.op('Where', [b.op('Greater', [low, T]), T, low]);
  return [clamped, T];
}

/**
 * Mean cross-entropy of `logits [..., C]` (float32) against int64 `labels [...]`, skipping the
 * labels equal to `ignore` (an int64 scalar value):
 *   −Σ onehot(labels) · LogSoftmax(logits) / max(1, #counted)
 */
function crossEntropy(b: GraphBuilder, opset: number, logits: string, labels: string, ignore: string, lossName?: string): string {
  const e = { b, opset };
  const logp = b.op('LogSoftmax', [logits], { axis: -1 });
  const shape = b.op('Shape', [logits]);
  const classes = b.op('Gather', [shape, b.constInt64([-1], [])], { axis: 0 });
  const range = b.op('Range', [b.constInt64([0], []), classes, b.constInt64([1], [])]);
  const onehot = b.op('Cast', [b.op('Equal', [unsqueeze(e, labels, [-1]), range])], { to: DT.FLOAT });
  const picked = reduce(e, 'ReduceSum', b.op('Mul', [onehot, logp]), 'all', 0);
  const counted = b.op('Cast', [b.op('Not', [b.op('Equal', [labels, ignore])])], { to: DT.FLOAT });
  const count = b.op('Max', [reduce(e, 'ReduceSum', counted, 'all', 0), b.scalar(1)]);
  return b.op('Neg', [b.op('Div', [picked, count])], {}, lossName ? { outputs: [lossName] } : {});
}
