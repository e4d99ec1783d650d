/**
 * The train graph holds no float64 value, so runtimes without double kernels (ONNX Runtime's
 * WebGPU build has none) run it as it is.
 *
 * In ONNX every value's element type comes from a graph input, an initializer, a tensor-valued
 * attribute (Constant, ConstantOfShape) or a type attribute (`Cast.to`, `EyeLike.dtype`, …);
 * every other op's output type follows from its inputs. Scanning those sources (and every
 * declared input, output and value_info, subgraphs included) for DOUBLE therefore finds any
 * float64 value the graph can hold.
 */
import { describe, expect, it } from 'vitest';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { valueInfoType } from '../../src/onnx/graph.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { create, GraphProtoSchema, ModelProtoSchema, type GraphProto, type ModelProto } from '../../src/onnx/proto.ts';
import { makeTensor } from '../../src/onnx/tensor.ts';
import { inject } from '../../src/adapter/inject.ts';
import { buildTrainingPlan } from '../../src/train/plan.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { loadFixture } from '../helpers/fixtures.ts';

/** Attributes whose int value is an ONNX element type. */
const TYPE_ATTRIBUTES = new Set(['to', 'dtype', 'output_dtype', 'output_datatype']);

/** Every place in the graph (and its subgraphs) that introduces a value of element type `elemType`. */
function sourcesOfType(graph: GraphProto, elemType: number, where: string[] = []): string[] {
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    if (valueInfoType(v)?.elemType === elemType) where.push(`value ${v.name}`);
  }
  for (const t of graph.initializer) if (t.dataType === elemType) where.push(`initializer ${t.name}`);
  for (const s of graph.sparseInitializer) if (s.values?.dataType === elemType) where.push(`sparse initializer ${s.values.name}`);
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (a.t?.dataType === elemType || a.tensors.some((t) => t.dataType === elemType)) where.push(`${node.opType} ${node.name}: attribute ${a.name}`);
      if (TYPE_ATTRIBUTES.has(a.name) && Number(a.i) === elemType) where.push(`${node.opType} ${node.name}: ${a.name}=${elemType}`);
      for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) sourcesOfType(g, elemType, where);
    }
  }
  return where;
}

async function trainGraphOf(modelPath: string, task: string, injectOpts: Parameters<typeof inject>[1]): Promise<ModelProto> {
  const adapted = inject(loadModel(modelPath), injectOpts).model;
  return (await buildTrainingPlan(nodeRuntime, adapted, { task })).graphs.train;
}

describe('train graph element types', () => {
  it('the shipped model (PEANuT r 8 on query,value, seq-cls): no float64 value', async () => {
    const train = await trainGraphOf('graphs/bert-tiny.onnx', 'seq-cls', { targets: 'query,value', r: 8 });
    expect(train.graph!.node.length).toBeGreaterThan(100);
    expect(sourcesOfType(train.graph!, DT.DOUBLE)).toEqual([]);
    // The optimizer's scalar inputs are float32.
    const scalars = train.graph!.input.filter((v) => valueInfoType(v)?.dims?.length === 0);
    expect(scalars.map((v) => v.name).sort()).toEqual(['beta1', 'beta2', 'bias_correction2_sqrt', 'decay', 'eps', 'max_grad_norm', 'one_minus_beta1', 'one_minus_beta2', 'step_size']);
    for (const v of scalars) expect(valueInfoType(v)!.elemType, v.name).toBe(DT.FLOAT);
  }, 60_000);

  it('a causal LM (GPT-2 fixture, PEANuT depth 1) and LoRA on BERT: no float64 value', async () => {
    const gpt2 = loadFixture('gpt2_tiny');
    const lm = await trainGraphOf(gpt2.modelPath, 'causal-lm', { r: 4, depth: 1 });
    expect(sourcesOfType(lm.graph!, DT.DOUBLE)).toEqual([]);
    const lora = await trainGraphOf('graphs/bert-tiny.onnx', 'seq-cls', { method: 'lora', r: 4, alpha: 8, targets: 'query,value' });
    expect(sourcesOfType(lora.graph!, DT.DOUBLE)).toEqual([]);
  }, 60_000);

  it('EXPECTED FAILURE - a double initializer, a Cast to double and a double input are found', () => {
    // Guards the scan itself: each way a float64 value can enter a graph is reported.
    const proto = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 14n }], graph: create(GraphProtoSchema, { name: 'g' }) });
    const g = new Graph(proto.graph!);
    proto.graph!.input.push(makeValueInfo('x', DT.FLOAT, [2]), makeValueInfo('d', DT.DOUBLE, []));
    g.addInitializer(makeTensor('w', DT.DOUBLE, [1], new Uint8Array(8)));
    const b = new GraphBuilder(g, '/t');
    b.op('Cast', ['x'], { to: DT.DOUBLE }, { name: 'to_f64' });
    expect(sourcesOfType(proto.graph!, DT.DOUBLE)).toEqual(['value d', 'initializer w', 'Cast /t/to_f64: to=11']);
  });
});
