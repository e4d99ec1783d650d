/**
 * A toy gradient model for testing the training machinery on its own: linear regression
 * `pred = x·w + c`, loss = mean((pred − y)²), with the gradients written by hand:
 *   dpred = 2·(pred − y)/N,  dw = xᵀ·dpred,  dc = Σ dpred.
 * θ = {w [F, 1], c [1, 1]} are graph inputs, as the autodiff's gradient models have them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, GraphProtoSchema, ModelProtoSchema } from '../../src/onnx/proto.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { buildTrainingGraphs, type GradModelLike } from '../../src/train/training-graph.ts';
import { makeManifest } from '../../src/train/manifest.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { writeArtifacts } from '../../src/node/artifacts.ts';
import { encodeSafetensors, type SafeTensor } from '../../src/formats/safetensors.ts';
import { Random } from '../../src/util/random.ts';

export const F = 4;
export const W_KEY = 'toy.peanut_A.weight';
export const C_KEY = 'toy.peanut_B.weight';

export function toyGradModel(): GradModelLike {
  const proto = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 14n }], graph: create(GraphProtoSchema, { name: 'toy' }) });
  const g = proto.graph!;
  g.input.push(makeValueInfo('x', DT.FLOAT, ['batch', F]), makeValueInfo('labels', DT.FLOAT, ['batch', 1]), makeValueInfo(W_KEY, DT.FLOAT, [F, 1]), makeValueInfo(C_KEY, DT.FLOAT, [1, 1]));
  const graph = new Graph(g);
  const b = new GraphBuilder(graph, '/toy');
  const pred = b.op('Add', [b.op('MatMul', ['x', W_KEY]), C_KEY], {}, { outputs: ['pred'] });
  const diff = b.op('Sub', [pred, 'labels']);
  const loss = b.op('ReduceMean', [b.op('Mul', [diff, diff])], { keepdims: 0 }, { outputs: ['loss'] });
  const n = b.op('Cast', [b.op('Size', [diff])], { to: DT.FLOAT });
  const dpred = b.op('Div', [b.op('Mul', [diff, b.scalar(2)]), n]);
  const dw = b.op('MatMul', [b.op('Transpose', ['x']), dpred], {}, { outputs: [`${W_KEY}.grad`] });
  const dc = b.op('ReduceSum', [dpred], { keepdims: 1 }, { outputs: [`${C_KEY}.grad`] });
  g.output.push(makeValueInfo(loss, DT.FLOAT, []), makeValueInfo(pred, DT.FLOAT, ['batch', 1]), makeValueInfo(dw, DT.FLOAT, [F, 1]), makeValueInfo(dc, DT.FLOAT, [1, 1]));
  return {
    model: { proto, baseDir: '.' },
    params: [W_KEY, C_KEY],
    loss,
    grads: new Map([
      [W_KEY, dw],
      [C_KEY, dc],
    ]),
    labels: [{ name: 'labels', field: 'labels' }],
    prediction: pred,
  };
}

/** Writes toy artifacts into `dir` (θ starts at zero). */
export function writeToyArtifacts(dir: string): void {
  const gm = toyGradModel();
  const graphs = buildTrainingGraphs(gm);
  const manifest = makeManifest(graphs, { task: 'regression', peanut: { toy: true }, source: null, runtime: nodeRuntime });
  const params = new Map<string, SafeTensor>([
    [W_KEY, { dtype: 'F32', shape: [F, 1], data: new Float32Array(F) }],
    [C_KEY, { dtype: 'F32', shape: [1, 1], data: new Float32Array(1) }],
  ]);
  writeArtifacts(dir, { graphs, manifest, params, baseDir: '.' });
}

/** y = x·w* + c* + noise, as a safetensors data file. */
export function writeToyData(path: string, n: number, seed: number): void {
  const rng = new Random(seed);
  const wStar = [1.5, -2, 0.5, 3];
  const x = new Float32Array(n * F);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0.7;
    for (let j = 0; j < F; j++) {
      const v = rng.normal();
      x[i * F + j] = v;
      s += v * wStar[j]!;
    }
    y[i] = s + 0.05 * rng.normal();
  }
  const chunks = encodeSafetensors({ x: { dtype: 'F32', shape: [n, F], data: x }, labels: { dtype: 'F32', shape: [n, 1], data: y } });
  writeFileSync(path, Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))));
}

export function toyDir(root: string): { artifacts: string; train: string; eval: string } {
  const artifacts = join(root, 'artifacts');
  writeToyArtifacts(artifacts);
  const train = join(root, 'train.safetensors');
  const evalPath = join(root, 'eval.safetensors');
  writeToyData(train, 64, 1);
  writeToyData(evalPath, 32, 2);
  return { artifacts, train, eval: evalPath };
}
