/**
 * The AdamW emitter against a hand-written reference of torch.optim.AdamW (single-tensor path)
 * and torch.nn.utils.clip_grad_norm_, on random tensors over several steps. The "gradients" are
 * graph inputs here, so the optimizer is checked on its own, independent of autodiff.
 */
import type { Session } from '../../src/runtime/session.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { create, ModelProtoSchema, GraphProtoSchema } from '../../src/onnx/proto.ts';
import { Graph, makeValueInfo } from '../../src/onnx/graph.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { DataType as DT } from '../../src/onnx/dtype.ts';
import { encodeModel } from '../../src/onnx/model.ts';
import { ADAMW_INPUTS, adamWScalarFeeds, addAdamWInputs, emitAdamW, type AdamWStepHyper } from '../../src/train/adamw.ts';
import { createSession, ort } from '../../src/node/onnxruntime.ts';
import { relError } from '../helpers/fixtures.ts';

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
}

/** torch.optim.AdamW (+ clip_grad_norm_) in float64, one step over all tensors. */
function referenceStep(p: Float64Array[], g: Float64Array[], m: Float64Array[], v: Float64Array[], t: number, h: Hyper): number {
  let sq = 0;
  for (const gi of g) for (const x of gi) sq += x * x;
  const norm = Math.sqrt(sq);
  const coef = Math.min(1, h.maxGradNorm / (norm + 1e-6));
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  for (let k = 0; k < p.length; k++) {
    const [pk, gk, mk, vk] = [p[k]!, g[k]!, m[k]!, v[k]!];
    for (let i = 0; i < pk.length; i++) {
      const gi = gk[i]! * coef;
      pk[i] = pk[i]! * (1 - h.lr * h.weightDecay);
      mk[i] = h.beta1 * mk[i]! + (1 - h.beta1) * gi;
      vk[i] = h.beta2 * vk[i]! + (1 - h.beta2) * gi * gi;
      const denom = Math.sqrt(vk[i]!) / Math.sqrt(bc2) + h.eps;
      pk[i] = pk[i]! - (h.lr / bc1) * (mk[i]! / denom);
    }
  }
  return norm;
}

/** A deterministic normal-ish generator (sum of uniforms) so the test needs no fixture. */
function rng(seed: number) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return () => u() + u() + u() - 1.5;
}

const SHAPES = [[4, 3], [3, 4], [5], [2, 2, 2]];

function toyModel(clip: boolean): Uint8Array {
  const proto = create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 14n }],
    graph: create(GraphProtoSchema, { name: 'adamw' }),
  });
  const graph = new Graph(proto.graph!);
  const b = new GraphBuilder(graph, '/optimizer');
  const params = SHAPES.map((shape, k) => {
    const names = { param: `p${k}`, grad: `g${k}`, m: `m${k}`, v: `v${k}` };
    for (const n of Object.values(names)) proto.graph!.input.push(makeValueInfo(n, DT.FLOAT, shape));
    for (const n of Object.values(names)) graph.reserve(n);
    return names;
  });
  const inputs = addAdamWInputs(b, ADAMW_INPUTS, { clip });
  const r = emitAdamW(b, params, inputs, { clip });
  SHAPES.forEach((shape, k) => {
    for (const [prefix, map] of [['new_p', r.params], ['new_m', r.m], ['new_v', r.v]] as const) {
      b.op('Identity', [map.get(`p${k}`)!], {}, { outputs: [`${prefix}${k}`] });
      proto.graph!.output.push(makeValueInfo(`${prefix}${k}`, DT.FLOAT, shape));
    }
  });
  b.op('Identity', [r.gradNorm], {}, { outputs: ['grad_norm'] });
  proto.graph!.output.push(makeValueInfo('grad_norm', DT.FLOAT, []));
  return encodeModel(proto);
}

/** The optimizer's scalar inputs for step `t`, as the trainer feeds them (float32), for the graph's inputs only. */
function scalarFeeds(session: Pick<Session, 'inputNames'>, h: AdamWStepHyper, t: number): Record<string, ort.Tensor> {
  const values = adamWScalarFeeds(ADAMW_INPUTS, h, t);
  const names = new Set(session.inputNames);
  return Object.fromEntries(Object.entries(values).filter(([n]) => names.has(n)).map(([n, x]) => [n, new ort.Tensor('float32', x, [])]));
}

describe('AdamW emitter vs torch.optim.AdamW semantics', () => {
  const sessions: Session[] = [];
  afterAll(async () => {
    for (const s of sessions) await s.release();
  });

  const cases: Array<{ name: string; clip: boolean; hyper: Hyper }> = [
    { name: 'no clipping', clip: false, hyper: { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: Infinity } },
    { name: 'no clipping, emitted with clip and max_grad_norm=Inf', clip: true, hyper: { lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, maxGradNorm: Infinity } },
    { name: 'clipping active (max_grad_norm 0.5)', clip: true, hyper: { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 0.5 } },
  ];

  for (const c of cases) {
    it(`matches the reference over 6 steps (${c.name})`, async () => {
      const { session } = await createSession(toyModel(c.clip), { ep: 'cpu', threads: 1 });
      sessions.push(session);
      const rand = rng(c.clip ? 7 : 3);
      const fill = (shape: number[]) => Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand);
      const zeros = (shape: number[]) => new Float64Array(shape.reduce((a, b) => a * b, 1));
      const refP = SHAPES.map(fill);
      const refM = SHAPES.map(zeros);
      const refV = SHAPES.map(zeros);
      let p: Float32Array[] = refP.map((x) => Float32Array.from(x));
      let m: Float32Array[] = refM.map((x) => Float32Array.from(x));
      let v: Float32Array[] = refV.map((x) => Float32Array.from(x));
      let clippedAtLeastOnce = false;
      for (let t = 1; t <= 6; t++) {
        // Gradients of varying scale, so clipping bites on some steps and not on others.
        const g = SHAPES.map((s) => fill(s).map((x) => x * (t % 2 ? 0.05 : 1)));
        const gradNorm = referenceStep(refP, g, refM, refV, t, c.hyper);
        if (gradNorm > c.hyper.maxGradNorm) clippedAtLeastOnce = true;
        const feeds = scalarFeeds(session, c.hyper, t);
        SHAPES.forEach((shape, k) => {
          feeds[`p${k}`] = new ort.Tensor('float32', p[k]!, shape);
          feeds[`g${k}`] = new ort.Tensor('float32', Float32Array.from(g[k]!), shape);
          feeds[`m${k}`] = new ort.Tensor('float32', m[k]!, shape);
          feeds[`v${k}`] = new ort.Tensor('float32', v[k]!, shape);
        });
        const out = await session.run(feeds);
        expect(Math.abs((out.grad_norm!.data as Float32Array)[0]! - gradNorm) / gradNorm).toBeLessThan(1e-6);
        p = SHAPES.map((_, k) => out[`new_p${k}`]!.data as Float32Array);
        m = SHAPES.map((_, k) => out[`new_m${k}`]!.data as Float32Array);
        v = SHAPES.map((_, k) => out[`new_v${k}`]!.data as Float32Array);
        SHAPES.forEach((_, k) => {
          expect(relError(p[k]!, refP[k]!)).toBeLessThan(1e-6);
          expect(relError(m[k]!, refM[k]!)).toBeLessThan(1e-6);
          expect(relError(v[k]!, refV[k]!)).toBeLessThan(1e-6);
        });
      }
      expect(clippedAtLeastOnce).toBe(c.hyper.maxGradNorm < Infinity);
    });
  }

  it('EXPECTED FAILURE - a wrong reference (no bias correction) is detected', async () => {
    // Guards the test itself: the emitted graph must differ measurably from a plausible bug.
    const { session } = await createSession(toyModel(false), { ep: 'cpu', threads: 1 });
    sessions.push(session);
    const p = Float32Array.of(0.5, -0.25, 1, 2);
    const g = Float32Array.of(0.1, -0.2, 0.3, 0.05);
    const zeros = new Float32Array(4);
    const feeds = scalarFeeds(session, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: Infinity }, 1);
    SHAPES.forEach((shape, k) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const fill = (src: Float32Array) => Float32Array.from({ length: n }, (_, i) => src[i % 4]!);
      feeds[`p${k}`] = new ort.Tensor('float32', fill(p), shape);
      feeds[`g${k}`] = new ort.Tensor('float32', fill(g), shape);
      feeds[`m${k}`] = new ort.Tensor('float32', fill(zeros), shape);
      feeds[`v${k}`] = new ort.Tensor('float32', fill(zeros), shape);
    });
    const out = await session.run(feeds);
    const got = (out.new_p0!.data as Float32Array).slice(0, 4);
    // With bias correction the first step moves every weight by lr·sign(g) (≈ 1e-2).
    for (let i = 0; i < 4; i++) expect(got[i]! - p[i]!).toBeCloseTo(-1e-2 * Math.sign(g[i]!), 6);
    // Without it the move would be lr·0.1·g/(√0.001·|g|) ≈ 3.2e-2: far from what we got.
    const buggy = p.map((x, i) => x - 1e-2 * (0.1 * g[i]!) / (Math.sqrt(0.001 * g[i]! * g[i]!) + 1e-8));
    expect(relError(got, buggy)).toBeGreaterThan(1e-3);
  });
});
