import { describe, expect, it } from 'vitest';
import { create, GraphProtoSchema } from '../../src/onnx/proto.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { floatTensor, makeTensor } from '../../src/onnx/tensor.ts';
import { makeValueInfo } from '../../src/onnx/graph.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { discoverTargets, parseTargets, selectCandidates, type Candidate } from '../../src/adapter/targets.ts';
import { modulePathFor } from '../../src/adapter/module-path.ts';
import { detectArchitecture } from '../../src/adapter/architectures.ts';
import { selectTargets } from '../../src/adapter/select.ts';
import { PeanutError } from '../../src/errors.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { join } from 'node:path';
import { tinyModel } from './tiny.ts';

const zeros = (n: number) => new Float32Array(n);

/** One graph with a layer of every kind discovery must tell apart. */
function zoo() {
  return tinyModel([['X', [2, 4]]], ['Y_q', 'Y_rt', 'Y_int', 'Y_r3', 'Y_c', 'Y_head', 'Y_s1', 'Y_s2', 'Y_if', 'Y_plain', 'Y_f64', 'Y_tr', 'Y_trs', 'Y_trs_id'], (b, g) => {
    g.addInitializer(floatTensor('onnx::MatMul_1', [4, 3], zeros(12)));
    g.addNode({ opType: 'MatMul', inputs: ['X', 'onnx::MatMul_1'], outputs: ['q'], name: '/enc/q/MatMul' });
    g.addNode({ opType: 'Add', inputs: ['q', 'q'], outputs: ['Y_q'], name: '/enc/q/Add' }); // not an output head
    // weight computed at run time
    g.addInitializer(floatTensor('w_rt', [4, 3], zeros(12)));
    const relu = b.op('Relu', ['w_rt']);
    g.addNode({ opType: 'MatMul', inputs: ['X', relu], outputs: ['Y_rt'], name: '/enc/rt/MatMul' });
    // integer weight
    g.addInitializer(makeTensor('w_int', DT.INT32, [4, 3], new Uint8Array(48)));
    g.addNode({ opType: 'MatMul', inputs: ['X', 'w_int'], outputs: ['Y_int'], name: '/enc/int/MatMul' });
    // rank-3 weight
    g.addInitializer(floatTensor('w_r3', [2, 4, 3], zeros(24)));
    g.addNode({ opType: 'MatMul', inputs: ['X', 'w_r3'], outputs: ['Y_r3'], name: '/enc/r3/MatMul' });
    // Constant-node weight: a candidate
    g.addNode({ opType: 'Constant', inputs: [], outputs: ['w_const'], attrs: { value: floatTensor('', [4, 3], zeros(12)) }, name: '/enc/c/Constant' });
    g.addNode({ opType: 'MatMul', inputs: ['X', 'w_const'], outputs: ['Y_c'], name: '/enc/c/MatMul' });
    // Gemm transB=1 feeding an output: the head
    g.addInitializer(floatTensor('head.weight', [5, 4], zeros(20)));
    g.addNode({ opType: 'Gemm', inputs: ['X', 'head.weight'], outputs: ['Y_head'], attrs: { transB: 1 }, name: '/head/Gemm' });
    // one weight read by two layers
    g.addInitializer(floatTensor('shared', [4, 3], zeros(12)));
    g.addNode({ opType: 'MatMul', inputs: ['X', 'shared'], outputs: ['Y_s1'], name: '/s1/MatMul' });
    g.addNode({ opType: 'MatMul', inputs: ['X', 'shared'], outputs: ['Y_s2'], name: '/s2/MatMul' });
    // a MatMul inside an If branch reading an outer-scope weight
    g.addInitializer(floatTensor('w_outer', [4, 3], zeros(12)));
    g.addInitializer(makeTensor('cond', DT.BOOL, [], Uint8Array.of(1)));
    const branch = (name: string) =>
      create(GraphProtoSchema, {
        name,
        node: [{ opType: 'MatMul', name: `/${name}/inner/MatMul`, input: ['X', 'w_outer'], output: [`${name}_out`] }],
        output: [makeValueInfo(`${name}_out`, DT.FLOAT, [2, 3])],
      } as never);
    g.addNode({ opType: 'If', inputs: ['cond'], outputs: ['Y_if'], attrs: { then_branch: branch('then'), else_branch: branch('else') }, name: '/ctl/If' });
    // unscoped name, module from the weight name
    g.addInitializer(floatTensor('model.proj.weight', [4, 3], zeros(12)));
    g.addNode({ opType: 'MatMul', inputs: ['X', 'model.proj.weight'], outputs: ['Y_plain'], name: 'MatMul_9' });
    // weight through a Transpose: a candidate stored [out, in]
    g.addInitializer(floatTensor('tr.weight', [3, 4], zeros(12)));
    g.addNode({ opType: 'Transpose', inputs: ['tr.weight'], outputs: ['trT'], attrs: { perm: [1, 0] }, name: '/tr/Transpose' });
    g.addNode({ opType: 'MatMul', inputs: ['X', 'trT'], outputs: ['tr_y'], name: '/tr/MatMul' });
    g.addNode({ opType: 'Add', inputs: ['tr_y', 'tr_y'], outputs: ['Y_tr'], name: '/tr/Add' });
    // ... but not when the stored weight has another reader
    g.addInitializer(floatTensor('trs.weight', [3, 4], zeros(12)));
    g.addNode({ opType: 'Transpose', inputs: ['trs.weight'], outputs: ['trsT'], name: '/trs/Transpose' });
    g.addNode({ opType: 'MatMul', inputs: ['X', 'trsT'], outputs: ['Y_trs'], name: '/trs/MatMul' });
    g.addNode({ opType: 'Identity', inputs: ['trs.weight'], outputs: ['Y_trs_id'], name: '/trs/Identity' });
    // float64 weight
    g.addInitializer(makeTensor('w_f64', DT.DOUBLE, [4, 3], new Uint8Array(96)));
    g.addNode({ opType: 'MatMul', inputs: ['X', 'w_f64'], outputs: ['Y_f64'], name: '/enc/f64/MatMul' });
  });
}

describe('module paths', () => {
  it.each([
    ['/bert/encoder/layer.0/attention/self/query/MatMul', 'onnx::MatMul_336', 'bert.encoder.layer.0.attention.self.query'],
    ['/transformer/h.0/attn/c_attn/Gemm', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn'],
    ['/model/layers.3/self_attn/q_proj/MatMul_1', 'x', 'model.layers.3.self_attn.q_proj'],
    ['/lm_head/MatMul', 'onnx::MatMul_689', 'lm_head'],
    ['/MatMul', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn'],
    ['MatMul_12', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn'],
    ['node_linear_3', 'onnx::MatMul_5', 'node_linear_3'],
    ['Gemm 7', 'onnx::Gemm_5', 'Gemm_7'],
    ['', 'onnx::Gemm_5', 'gemm_4'],
  ])('%s + %s -> %s', (node, weight, want) => {
    expect(modulePathFor(node, weight, 'gemm_4')).toBe(want);
  });

  it('names a dynamo-style layer after the weight behind its Transpose', () => {
    const m = tinyModel([['X', [2, 4]]], ['y'], (_b, g) => {
      g.addInitializer(floatTensor('model.layers.0.self_attn.q_proj.weight', [3, 4], zeros(12)));
      g.addNode({ opType: 'Transpose', inputs: ['model.layers.0.self_attn.q_proj.weight'], outputs: ['val_3'], name: 'node_Transpose_2' });
      g.addNode({ opType: 'MatMul', inputs: ['X', 'val_3'], outputs: ['y'], name: 'node_MatMul_3' });
    });
    expect(discoverTargets(m).candidates.map((c) => c.module)).toEqual(['model.layers.0.self_attn.q_proj']);
  });

  it('disambiguates two layers in one scope', () => {
    const m = tinyModel([['X', [2, 4]]], ['a', 'b'], (_b, g) => {
      g.addInitializer(floatTensor('w1', [4, 3], zeros(12)));
      g.addInitializer(floatTensor('w2', [4, 3], zeros(12)));
      g.addNode({ opType: 'MatMul', inputs: ['X', 'w1'], outputs: ['a'], name: '/blk/MatMul' });
      g.addNode({ opType: 'MatMul', inputs: ['X', 'w2'], outputs: ['b'], name: '/blk/MatMul_1' });
    });
    expect(discoverTargets(m).candidates.map((c) => c.module)).toEqual(['blk.MatMul', 'blk.MatMul_1']);
  });
});

describe('target discovery', () => {
  const d = discoverTargets(zoo());
  const cand = (node: string) => d.candidates.find((c) => c.node === node);
  const skip = (node: string) => d.skipped.find((s) => s.node === node)?.reason;

  it('finds the candidates with [in, out] shapes', () => {
    expect(d.candidates.map((c) => c.module)).toEqual(['enc.q', 'enc.c', 'head', 'model.proj', 'tr']);
    expect(cand('/tr/MatMul')).toMatchObject({ weight: 'tr.weight', transposeNode: '/tr/Transpose', feedNode: '/tr/Transpose', layout: 'oi', in: 4, out: 3 });
    expect(cand('/enc/c/MatMul')).toMatchObject({ weightSource: 'constant', constantNode: '/enc/c/Constant', in: 4, out: 3, transB: false });
    expect(cand('/head/Gemm')).toMatchObject({ op: 'Gemm', transB: true, storedShape: [5, 4], in: 4, out: 5, isHead: true });
    expect(cand('/enc/q/MatMul')).toMatchObject({ weight: 'onnx::MatMul_1', dtype: 'float32', isHead: false });
  });

  it('says why each other layer is skipped', () => {
    expect(skip('/enc/rt/MatMul')).toMatch(/computed at run time \(by Relu node/);
    expect(skip('/enc/int/MatMul')).toMatch(/is int32; only float32, float16 and bfloat16/);
    expect(skip('/enc/r3/MatMul')).toMatch(/rank 3 \(\[2, 4, 3\]\)/);
    expect(skip('/s1/MatMul')).toMatch(/also read by 1 other node/);
    expect(skip('/s2/MatMul')).toMatch(/also read by 1 other node/);
    expect(skip('/then/inner/MatMul')).toMatch(/inside the If '\/ctl\/If' \(then_branch\) subgraph/);
    expect(skip('/else/inner/MatMul')).toMatch(/control-flow subgraphs/);
    expect(skip('/enc/f64/MatMul')).toMatch(/float64/);
    expect(skip('/trs/MatMul')).toMatch(/weight 'trs\.weight' \(through Transpose '\/trs\/Transpose'\) is also read by 1 other node/);
  });

  it('detects the output head of the fixtures', () => {
    const bert = discoverTargets(loadModel(join(FIXTURES_DIR, 'bert_tiny_opset14', 'model.onnx')));
    expect(bert.candidates.filter((c) => c.isHead).map((c) => c.module)).toEqual(['classifier']);
    const gpt2 = discoverTargets(loadModel(join(FIXTURES_DIR, 'gpt2_tiny', 'model.onnx')));
    expect(gpt2.candidates.filter((c) => c.isHead).map((c) => c.module)).toEqual(['lm_head']);
  });
});

describe('--targets', () => {
  const mods = [
    'bert.encoder.layer.0.attention.self.query',
    'bert.encoder.layer.0.attention.self.value',
    'bert.encoder.layer.0.attention.output.dense',
    'bert.encoder.layer.1.attention.self.query',
    'bert.pooler.dense',
    'classifier',
  ];
  const cands = mods.map((module, i) => ({ module, node: `n${i}`, isHead: module === 'classifier' }) as Candidate);
  const pick = (spec: string) => selectCandidates(cands, parseTargets(spec)).map((c) => c.module);

  it('matches suffixes on dot boundaries', () => {
    expect(pick('query')).toEqual([mods[0], mods[3]]);
    expect(pick('query,value')).toEqual([mods[0], mods[1], mods[3]]);
    expect(pick('output.dense')).toEqual([mods[2]]);
    expect(pick('dense')).toEqual([mods[2], mods[4]]);
    expect(pick('ery')).toEqual([]); // not a whole name
    expect(pick('classifier')).toEqual(['classifier']);
  });

  it('fully matches a regex', () => {
    expect(pick('.*layer\\.0.*(query|value)')).toEqual([mods[0], mods[1]]);
    expect(pick('layer\\.0.*')).toEqual([]); // must match the whole path
    expect(pick('^classifier$')).toEqual(['classifier']);
  });

  it('all-linear excludes the output head', () => {
    expect(pick('all-linear')).toEqual(mods.slice(0, 5));
  });

  it('rejects a bad regex', () => {
    expect(() => parseTargets('(query')).toThrow(/not a valid regular expression/);
  });
});

describe('default targets per architecture', () => {
  it.each([
    [['bert.encoder.layer.0.attention.self.query', 'bert.encoder.layer.0.attention.self.value', 'classifier'], 'bert', ['query', 'value']],
    [['roberta.encoder.layer.0.attention.self.query', 'roberta.encoder.layer.0.attention.self.value'], 'roberta', ['query', 'value']],
    [['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.v_proj', 'lm_head'], 'llama', ['q_proj', 'v_proj']],
    [['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'lm_head'], 'gpt2', ['c_attn']],
  ])('%j -> %s', (modules, modelType, targets) => {
    const d = detectArchitecture(modules);
    expect(d?.modelType).toBe(modelType);
    expect(d?.architecture.targets).toEqual(targets);
  });

  it('unknown architecture: asks for --targets and lists the candidates', () => {
    const d = discoverTargets(zoo());
    let err: unknown;
    try {
      selectTargets(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PeanutError);
    expect((err as PeanutError).code).toBe('E_NO_TARGETS');
    expect((err as Error).message).toMatch(/pass --targets.*enc\.q, enc\.c, head, model\.proj, tr/);
  });

  it('no match: lists candidates, and why a named layer was skipped', () => {
    const d = discoverTargets(zoo());
    expect(() => selectTargets(d, 'nothing')).toThrow(/no layer matches --targets 'nothing'.*Candidate modules: enc\.q, enc\.c, head, model\.proj/);
    const headOnly = discoverTargets(
      tinyModel([['X', [2, 4]]], ['Y'], (_b, g) => {
        g.addInitializer(floatTensor('w', [4, 3], zeros(12)));
        g.addNode({ opType: 'MatMul', inputs: ['X', 'w'], outputs: ['Y'], name: '/out/MatMul' });
      }),
    );
    expect(() => selectTargets(headOnly, 'all-linear')).toThrow(/every candidate is an output head/);
    expect(() => selectTargets(d, 'enc.rt')).toThrow(/enc\.rt is skipped: weight '[^']*Relu[^']*' is computed at run time/);
  });
});

describe('bfloat16 weights', () => {
  const model = (opset: number) =>
    tinyModel(
      [['X', [2, 4], DT.BFLOAT16]],
      ['Y'],
      (_b, g) => {
        g.addInitializer(floatTensor('w', [4, 3], new Float32Array(12), DT.BFLOAT16));
        g.addNode({ opType: 'MatMul', inputs: ['X', 'w'], outputs: ['Y'], name: '/m/MatMul' });
      },
      opset,
    );

  it('are candidates from opset 13, skipped before', () => {
    expect(discoverTargets(model(13)).candidates.map((c) => [c.module, c.dtype])).toEqual([['m', 'bfloat16']]);
    expect(discoverTargets(model(12)).skipped[0]!.reason).toMatch(/bfloat16, which needs opset >= 13/);
  });
});
