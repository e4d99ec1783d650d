/**
 * `peanut-onnx grad`: one batch from safetensors or JSONL, loss and `<key>.grad` written; the
 * numbers match the PyTorch oracle; user errors exit 1 and write nothing.
 */
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { inject } from '../../src/adapter/inject.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { runCli } from '../helpers/cli.ts';
import { Graph } from '../../src/onnx/graph.ts';
import { create, GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema } from '../../src/onnx/proto.ts';
import { makeValueInfo } from '../../src/onnx/graph.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { floatTensor } from '../../src/onnx/tensor.ts';
import { writeSafetensors } from '../../src/node/safetensors-files.ts';
import { buildGradModel } from '../../src/train/grad-model.ts';
import { randomValues } from '../helpers/gradcheck.ts';
import { loadFixture, relError, type Fixture } from '../helpers/fixtures.ts';

let dir: string;
let f: Fixture;
let adapted: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'peanut-grad-'));
  f = loadFixture('gpt2_tiny');
  const c = f.config.tweaker.peft_equivalent_config;
  const { model } = inject(loadModel(f.modelPath), { r: c.r, depth: c.depth, act: c.act_fn, scaling: c.scaling, targets: c.target_modules, init: f.peftTensors('tweaker') });
  adapted = join(dir, 'adapted.onnx');
  saveModel(model, adapted);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('peanut-onnx grad', () => {
  it('writes the loss and every tweaker gradient for a safetensors batch (matches PyTorch)', async () => {
    const out = join(dir, 'grads.safetensors');
    const r = await runCli(['grad', adapted, '--data', join(f.dir, 'batch.safetensors'), '--task', 'causal-lm', '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/loss 0\.65517/);
    const { tensors } = readSafetensors(out);
    const expected = f.expected();
    expect(tensors.get('loss')!.shape).toEqual([]);
    expect(Math.abs((tensors.get('loss')!.data as Float32Array)[0]! - (expected.get('loss')!.data as Float32Array)[0]!)).toBeLessThan(1e-5);
    let n = 0;
    for (const [key, t] of expected) {
      if (!key.endsWith('::grad')) continue;
      const got = tensors.get(`${f.toPeftKey(key.slice(0, -6))}.grad`);
      expect(got, key).toBeDefined();
      expect(relError(got!.data as Float32Array, t.data as Float32Array)).toBeLessThan(1e-3);
      n++;
    }
    expect(tensors.size).toBe(n + 1);
  });

  it('reads JSONL examples, pads them, and derives causal-LM labels', async () => {
    const data = join(dir, 'data.jsonl');
    writeFileSync(data, [JSON.stringify({ input_ids: [5, 9, 3, 12] }), JSON.stringify({ input_ids: [7, 1] })].join('\n'));
    const out = join(dir, 'grads-jsonl.safetensors');
    const r = await runCli(['grad', adapted, '--data', data, '--task', 'causal-lm', '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const loss = (readSafetensors(out).tensors.get('loss')!.data as Float32Array)[0]!;
    expect(Number.isFinite(loss) && loss > 0).toBe(true);
  });

  it('EXPECTED FAILURE - an unknown prediction output exits 1, lists the outputs, writes nothing', async () => {
    const out = join(dir, 'nothing.safetensors');
    const r = await runCli(['grad', adapted, '--data', join(f.dir, 'batch.safetensors'), '--task', 'causal-lm', '--head', 'nope', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/'nope' is not a value of the model; its graph outputs are 'logits'/);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ['Hardmax', ''],
    ['FancyAttention', 'com.example'],
  ])('EXPECTED FAILURE - %s on the gradient path: exit 1 naming op, node and path, nothing written', async (opType, domain) => {
    // logits = pre + op(pre): the op sits between every θ and the loss
    const model = loadModel(adapted);
    const g = model.proto.graph!;
    const last = g.node.find((n) => n.output.includes('logits'))!;
    last.output = last.output.map((o) => (o === 'logits' ? 'pre_logits' : o));
    const graph = new Graph(g);
    graph.addNode({ opType, domain, inputs: ['pre_logits'], outputs: ['odd'], name: '/lm_head/odd' });
    graph.addNode({ opType: 'Add', inputs: ['pre_logits', 'odd'], outputs: ['logits'], name: '/lm_head/add' });
    if (domain) model.proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain, version: 1n }));
    const path = join(dir, `odd-${opType}.onnx`);
    saveModel(model, path);
    const out = join(dir, `odd-${opType}.safetensors`);
    const r = await runCli(['grad', path, '--data', join(f.dir, 'batch.safetensors'), '--task', 'causal-lm', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no gradient rule for op '${opType}'`);
    expect(r.stderr).toContain(`node '/lm_head/odd'`);
    expect(r.stderr).toMatch(new RegExp(`peanut_[AB]\\.weight' -> .* -> ${opType} '/lm_head/odd'`));
    expect(existsSync(out)).toBe(false);
  });

  it('a model whose input dims are tied (synthetic probing fails) is probed with the real batch', async () => {
    // logits = (x + y) · W: x [batch, n] and y [batch, m] need n == m, which synthetic batches break
    const g = create(GraphProtoSchema, { name: 'tied' });
    g.input.push(makeValueInfo('x', DT.FLOAT, ['batch', 'n']), makeValueInfo('y', DT.FLOAT, ['batch', 'm']));
    g.initializer.push(floatTensor('onnx::MatMul_1', [4, 3], randomValues(12, 3)));
    const graph = new Graph(g);
    graph.addNode({ opType: 'Add', inputs: ['x', 'y'], outputs: ['s'], name: '/layer/Add' });
    graph.addNode({ opType: 'MatMul', inputs: ['s', 'onnx::MatMul_1'], outputs: ['logits'], name: '/layer/dense/MatMul' });
    g.output.push(makeValueInfo('logits', DT.FLOAT, ['batch', 3]));
    const base = { proto: create(ModelProtoSchema, { irVersion: 8n, graph: g, opsetImport: [{ domain: '', version: 17n }] }), baseDir: dir };
    const { model } = inject(base, { r: 2, targets: 'dense' });
    await expect(buildGradModel(nodeRuntime, model, { task: 'regression' })).rejects.toThrow(/shape probing failed/);
    const path = join(dir, 'tied.onnx');
    saveModel(model, path);
    const data = join(dir, 'tied.safetensors');
    writeSafetensors(data, {
      x: { dtype: 'F32', shape: [2, 4], data: Float32Array.from(randomValues(8, 4)) },
      y: { dtype: 'F32', shape: [2, 4], data: Float32Array.from(randomValues(8, 5)) },
      labels: { dtype: 'F32', shape: [2, 3], data: Float32Array.from(randomValues(6, 6)) },
    });
    const out = join(dir, 'tied-grads.safetensors');
    const r = await runCli(['grad', path, '--data', data, '--task', 'regression', '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const grads = readSafetensors(out).tensors;
    expect([...grads.keys()].sort()).toEqual(['layer.dense.peanut_A.weight.grad', 'layer.dense.peanut_B.weight.grad', 'loss']);
  });

  it('BAD CALL - a missing --task or an unknown task is a usage error (exit 2)', async () => {
    expect((await runCli(['grad', adapted, '--data', 'x.jsonl', '-o', join(dir, 'x.safetensors')])).code).toBe(2);
    expect((await runCli(['grad', adapted, '--data', 'x.jsonl', '--task', 'translate', '-o', join(dir, 'x.safetensors')])).code).toBe(2);
  });
});
