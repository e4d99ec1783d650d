/**
 * Fused vs unfused (not a CI test): ONNX Runtime's transformer-optimized tiny GPT-2
 * (test/fixtures/real-exports/tiny-random-gpt2-fp32-past.onnx: EmbedLayerNormalization,
 * com.microsoft Attention with past, SkipLayerNormalization, FastGelu) against the same weights in
 * the unfused TorchScript layout (tools/lib/gpt2.ts, stacked past, position_ids input, Conv1D as
 * MatMul + Add). Both are adapted with their default targets (c_attn) and trained through the
 * library `train()` (what the CLI runs), in one process, interleaved run by run:
 *
 *  - step time: differences of consecutive 'step' event times, the first 2 left out, median;
 *  - frozen forward: one onnxruntime run of the original model on a training-shaped batch,
 *    median over reps, the two models alternated.
 *
 * The unfused copy is checked first: its logits must equal the fused model's within 1e-4.
 *
 *   npx tsx tools/bench-fused.ts [--steps 30] [--batch 8] [--seq 32] [--rounds 2] [--reps 20] [--threads N]
 *
 * Prints one JSON line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { train } from '../src/index.ts';
import { inject } from '../src/adapter/inject.ts';
import { loadModel, saveModel } from '../src/node/model-files.ts';
import { createSession, ort } from '../src/node/onnxruntime.ts';
import { readBatches } from '../src/node/batches.ts';
import { encodeModel, graphOf, type OnnxModel } from '../src/onnx/model.ts';
import { floatTensor, tensorDims, tensorToFloat32 } from '../src/onnx/tensor.ts';
import { buildGpt2 } from './lib/gpt2.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const steps = Number(arg('steps', '30'));
const B = Number(arg('batch', '8'));
const S = Number(arg('seq', '32'));
const rounds = Number(arg('rounds', '2'));
const reps = Number(arg('reps', '20'));
const threads = Number(arg('threads', '0')) || undefined;

const root = join(fileURLToPath(import.meta.url), '..', '..');
const FUSED = join(root, 'test', 'fixtures', 'real-exports', 'tiny-random-gpt2-fp32-past.onnx');

/**
 * The fused model's weights in the unfused layout. The optimizer deduplicated equal tensors
 * (every LayerNorm gamma/beta, the biases), so those are read from the one copy it kept, by the
 * fused nodes' inputs.
 */
function unfusedCopy(fused: OnnxModel): OnnxModel {
  const fg = graphOf(fused);
  const value = (name: string) => {
    const t = fg.initializer.find((x) => x.name === name);
    if (!t) throw new Error(`fused model has no initializer '${name}'`);
    return tensorToFloat32(t, fused.baseDir);
  };
  const node = (op: string) => fg.node.find((n) => n.opType === op)!;
  const eps = node('SkipLayerNormalization').attribute.find((a) => a.name === 'epsilon')?.f ?? 1e-12;
  const skip = node('SkipLayerNormalization');
  const attn = node('Attention');
  const gelu = node('FastGelu');
  const lmHead = fg.node.find((n) => n.opType === 'MatMul' && n.output[0] === 'logits')!.input[1]!;
  const model = buildGpt2({ vocabSize: 1000, hiddenSize: 32, numLayers: 5, numHeads: 4, maxPositions: 512, layerNormEps: eps, cache: 'stacked', positionIdsInput: true, conv1d: 'matmul' });
  const g = graphOf(model);
  const own = new Set(fg.initializer.map((t) => t.name));
  g.initializer = g.initializer.map((t) => {
    let from: string | undefined;
    if (own.has(t.name)) from = t.name;
    else if (/\.ln_\d\.weight$|ln_f\.weight$/.test(t.name)) from = skip.input[2];
    else if (/\.ln_\d\.bias$|ln_f\.bias$/.test(t.name)) from = skip.input[3];
    else if (/attn\.c_attn\.bias$/.test(t.name)) from = attn.input[2];
    else if (/mlp\.c_fc\.bias$/.test(t.name)) from = gelu.input[1];
    else if (/c_proj\.bias$/.test(t.name)) from = skip.input[4];
    else if (/^onnx::MatMul_/.test(t.name) && tensorDims(t).join() === '32,1000') from = lmHead;
    return from ? floatTensor(t.name, tensorDims(t), Float32Array.from(value(from))) : t;
  });
  return model;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fused-'));
  try {
    const fused = loadModel(FUSED);
    const unfused = unfusedCopy(fused);
    const data = join(dir, 'lm.jsonl');
    let s = 7;
    const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s);
    const rows = Array.from({ length: B * 8 }, () => ({ input_ids: Array.from({ length: S }, () => next() % 1000) }));
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

    const models = { fused, unfused } as const;
    type Kind = keyof typeof models;
    const kinds: Kind[] = ['fused', 'unfused'];
    const sessions = new Map<Kind, { run: (f: Record<string, ort.Tensor>) => Promise<Record<string, ort.Tensor>>; release: () => Promise<void> }>();
    const feeds = new Map<Kind, Record<string, ort.Tensor>>();
    for (const k of kinds) {
      const m = models[k];
      const { session } = await createSession(encodeModel(m.proto), { ep: 'cpu', ...(threads ? { threads } : {}) });
      sessions.set(k, session as never);
      const batch = readBatches(data, m, { task: 'causal-lm', batchSize: B })[0]!;
      const names = new Set(graphOf(m).input.map((v) => v.name));
      feeds.set(k, Object.fromEntries(Object.entries(batch).filter(([n]) => names.has(n)).map(([n, t]) => [n, new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims as number[])])));
    }
    // The unfused copy computes the fused model's logits.
    const logits = await Promise.all(kinds.map(async (k) => (await sessions.get(k)!.run(feeds.get(k)!)).logits!.data as Float32Array));
    let diff = 0;
    for (let i = 0; i < logits[0]!.length; i++) diff = Math.max(diff, Math.abs(logits[0]![i]! - logits[1]![i]!));
    if (!(diff <= 1e-4)) throw new Error(`the unfused copy's logits differ from the fused model's by ${diff}`);

    const forward: Record<Kind, number[]> = { fused: [], unfused: [] };
    for (let r = 0; r < reps + 2; r++) {
      for (const k of kinds) {
        const t0 = performance.now();
        await sessions.get(k)!.run(feeds.get(k)!);
        if (r >= 2) forward[k].push(performance.now() - t0);
      }
    }
    for (const k of kinds) await sessions.get(k)!.release();

    const paths = Object.fromEntries(kinds.map((k) => {
      const p = join(dir, `${k}-adapted.onnx`);
      saveModel(inject(models[k], { r: 4, seed: 1 }).model, p);
      return [k, p];
    })) as Record<Kind, string>;
    const step: Record<Kind, number[]> = { fused: [], unfused: [] };
    const losses: Record<Kind, number[]> = { fused: [], unfused: [] };
    for (let r = 0; r < rounds; r++) {
      for (const k of kinds) {
        const times: number[] = [];
        await train(paths[k], {
          data,
          outDir: join(dir, `${k}-run-${r}`),
          task: 'causal-lm',
          steps,
          batchSize: B,
          ep: 'cpu',
          saveEvery: 0,
          ...(threads ? { threads } : {}),
          onEvent: (e) => {
            if (e.type === 'step') {
              times.push(performance.now());
              if (r === 0) losses[k].push(e.loss);
            }
          },
        });
        for (let i = 3; i < times.length; i++) step[k].push(times[i]! - times[i - 1]!);
      }
    }
    const ms = (x: number) => Number(x.toFixed(3));
    const line = {
      bench: 'fused-vs-unfused tiny GPT-2 (ORT-optimized fixture vs the same weights unfused)',
      batch: B,
      seq: S,
      steps,
      rounds,
      threads: threads ?? 'default',
      logitsMaxAbsDiff: diff,
      stepMs: { fused: ms(median(step.fused)), unfused: ms(median(step.unfused)) },
      frozenForwardMs: { fused: ms(median(forward.fused)), unfused: ms(median(forward.unfused)) },
      stepSpeedup: ms(median(step.unfused) / median(step.fused)),
      forwardSpeedup: ms(median(forward.unfused) / median(forward.fused)),
      firstLoss: { fused: losses.fused[0], unfused: losses.unfused[0] },
      nodes: { fused: graphOf(fused).node.length, unfused: graphOf(unfused).node.length },
    };
    console.log(JSON.stringify(line));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
