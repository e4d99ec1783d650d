/**
 * The > 2 GB check (not CI): generates a wide BERT classifier whose float32 weights (> 2 GB) live
 * in external data, then runs `peanut-onnx inject` and `peanut-onnx merge` on it as separate
 * processes under `/usr/bin/time -v`, and reports each one's wall time and peak resident memory
 * next to a plain `cp` of the data file. Optionally (--verify) runs the adapted and merged models
 * in onnxruntime on a small batch and compares their logits.
 *
 *   npx tsx tools/big-model-check.ts [--dir DIR] [--hidden 1536] [--layers 24] [--verify] [--keep]
 *
 * No tensor is larger than one layer's weight (a few tens of MB) while generating, and the
 * protobuf holds only references, so nothing ever needs a buffer of 2 GB. Outputs are deleted at
 * the end unless --keep. Needs about 4× the model size of free disk under DIR (model, adapted,
 * merged, the cp reference).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { graphOf } from '../src/onnx/model.ts';
import { loadModel, saveModel } from '../src/node/model-files.ts';
import { tensorBytes } from '../src/onnx/tensor.ts';
import { readAdapterMeta } from '../src/adapter/adapter-meta.ts';
import { resolveMethodConfig } from '../src/adapter/config.ts';
import { methodFor } from '../src/adapter/methods/index.ts';
import { selectTargets } from '../src/adapter/select.ts';
import { discoverTargets } from '../src/adapter/targets.ts';
import { writeSafetensors } from '../src/node/safetensors-files.ts';
import { type SafeTensor } from '../src/formats/safetensors.ts';
import { Random } from '../src/util/random.ts';
import { buildBert } from './lib/bert.ts';

const CLI = fileURLToPath(new URL('../bin/peanut-onnx.js', import.meta.url));

interface Measured {
  wallS: number;
  peakRssMB: number | null;
  stdout: string;
}

/** Runs a command under /usr/bin/time -v (when present) and parses wall time and peak RSS. */
function measure(cmd: string, args: string[]): Measured {
  const timed = existsSync('/usr/bin/time');
  const t0 = performance.now();
  const r = timed ? spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  return { wallS, peakRssMB: rss ? Number(rss[1]) / 1024 : null, stdout: r.stdout ?? '' };
}

function dirSize(paths: string[]): number {
  return paths.filter(existsSync).reduce((s, p) => s + statSync(p).size, 0);
}

const fmtGB = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const fmtRss = (m: Measured) => (m.peakRssMB === null ? 'n/a (no /usr/bin/time)' : `${m.peakRssMB.toFixed(0)} MiB`);

async function main(argv: string[]): Promise<number> {
  let dir: string | undefined;
  let hidden = 1536;
  let layers = 24;
  let verify = false;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--dir') dir = argv[++i];
    else if (a === '--hidden') hidden = Number(argv[++i]);
    else if (a === '--layers') layers = Number(argv[++i]);
    else if (a === '--verify') verify = true;
    else if (a === '--keep') keep = true;
    else {
      console.error('usage: tsx tools/big-model-check.ts [--dir DIR] [--hidden 1536] [--layers 24] [--verify] [--keep]');
      return 2;
    }
  }
  if (!Number.isInteger(hidden) || hidden % 64 !== 0 || !Number.isInteger(layers) || layers < 1) {
    console.error('--hidden must be a multiple of 64 and --layers a positive integer');
    return 2;
  }
  const inter = 4 * hidden;
  const params = 30522 * hidden + 512 * hidden + 2 * hidden + layers * (4 * hidden * hidden + 2 * hidden * inter + 9 * hidden + inter) + hidden * hidden + 2 * hidden;
  const bytes = params * 4;
  const work = resolve(dir ?? mkdtempSync(join(tmpdir(), 'peanut-big-')));
  const fs = statfsSync(work);
  const free = fs.bavail * fs.bsize;
  console.log(`model: BERT hidden ${hidden}, ${layers} layers, intermediate ${inter}: ${(params / 1e6).toFixed(0)} M parameters, ${fmtGB(bytes)} float32; work dir ${work} (${fmtGB(free)} free)`);
  if (free < 4.2 * bytes) {
    console.error(`not enough free disk: need about ${fmtGB(4.2 * bytes)} for model, adapted, merged and the cp reference`);
    return 1;
  }
  const model = join(work, 'model.onnx');
  const adapted = join(work, 'adapted.onnx');
  const merged = join(work, 'merged.onnx');
  const copy = join(work, 'copy.bin');
  try {
    let t0 = performance.now();
    {
      const m = buildBert({ vocabSize: 30522, hiddenSize: hidden, numLayers: layers, numHeads: hidden / 64, intermediateSize: inter, maxPositions: 512, numLabels: 2, opset: 14, seed: 7 });
      const largest = Math.max(...graphOf(m).initializer.map((t) => t.rawData.byteLength));
      console.log(`generated in ${((performance.now() - t0) / 1000).toFixed(1)} s; largest tensor ${(largest / 2 ** 20).toFixed(1)} MiB`);
      t0 = performance.now();
      saveModel(m, model, { externalData: true });
    }
    console.log(`wrote ${model} (${(statSync(model).size / 2 ** 10).toFixed(0)} KiB) + ${model}_data (${fmtGB(statSync(`${model}_data`).size)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Random θ (B nonzero too), so the merge really changes the target weights.
    const init = join(work, 'init.safetensors');
    {
      const m = loadModel(model);
      const { selected } = selectTargets(discoverTargets(m), 'query,value');
      const config = resolveMethodConfig({ r: 16 });
      const tensors = new Map<string, SafeTensor>();
      for (const c of selected) {
        for (const spec of methodFor(config).paramSpecs(config, { in: c.in, out: c.out })) {
          const key = `${c.module}.${spec.suffix}`;
          const data = Random.forKey(7, key).fillUniform(new Float32Array(spec.shape[0] * spec.shape[1]), -0.05, 0.05);
          tensors.set(key, { dtype: 'F32', shape: [...spec.shape], data });
        }
      }
      writeSafetensors(init, tensors);
    }

    const cp = measure('cp', [`${model}_data`, copy]);
    rmSync(copy, { force: true });
    const inj = measure(process.execPath, [CLI, 'inject', model, '-o', adapted, '--rank', '16', '--targets', 'query,value', '--init', init]);
    const mrg = measure(process.execPath, [CLI, 'merge', adapted, '-o', merged]);
    const startup = measure(process.execPath, [CLI, '--help']);

    // The merged data file has the original layout: same size; untouched tensors byte-identical.
    const orig = loadModel(model);
    const out = loadModel(merged);
    const meta = readAdapterMeta(loadModel(adapted))!;
    const targets = new Set(meta.targets.map((t) => t.weight));
    const o = new Map(graphOf(orig).initializer.map((t) => [t.name, t]));
    let same = 0;
    let changed = 0;
    for (const t of graphOf(out).initializer) {
      const a = tensorBytes(t, out.baseDir);
      const b = tensorBytes(o.get(t.name)!, orig.baseDir);
      const eq = Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
      if (targets.has(t.name)) changed += eq ? 0 : 1;
      else if (eq) same++;
      else throw new Error(`merge changed '${t.name}', which is not a target weight`);
    }
    console.log(`merged: ${same} untouched tensors byte-identical, ${changed}/${targets.size} target weights changed; data ${fmtGB(statSync(`${merged}_data`).size)} (original ${fmtGB(statSync(`${model}_data`).size)})`);

    if (verify) {
      const { createSession, ort } = await import('../src/node/onnxruntime.ts');
      const ids = BigInt64Array.from({ length: 16 }, (_, i) => BigInt((i * 7919) % 30522));
      const feeds = {
        input_ids: new ort.Tensor('int64', ids, [2, 8]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(16).fill(1n), [2, 8]),
        token_type_ids: new ort.Tensor('int64', new BigInt64Array(16), [2, 8]),
      };
      const run = async (p: string) => {
        const { session } = await createSession(p, { ep: 'cpu' });
        try {
          return Float32Array.from((await session.run(feeds)).logits!.data as Float32Array);
        } finally {
          await session.release();
        }
      };
      const lo = await run(model);
      const la = await run(adapted);
      const lm = await run(merged);
      const moved = Math.max(...Array.from(la, (v, i) => Math.abs(v - lo[i]!)));
      let num = 0;
      let den = 0;
      for (let i = 0; i < la.length; i++) {
        num = Math.max(num, Math.abs(la[i]! - lm[i]!));
        den = Math.max(den, Math.abs(la[i]!));
      }
      console.log(`verify: merged vs adapted logits, max rel diff ${(num / den).toExponential(2)}; the adapter moves the logits by up to ${moved.toExponential(2)} (merged: ${Array.from(lm).map((v) => v.toPrecision(6)).join(', ')})`);
    }

    console.log('\n| step | wall time | peak RSS |');
    console.log('|---|---|---|');
    console.log(`| cp of the data file (${fmtGB(statSync(`${model}_data`).size)}) | ${cp.wallS.toFixed(1)} s | ${fmtRss(cp)} |`);
    console.log(`| peanut-onnx inject (${meta.targets.length} layers, ${meta.targetModules}, r=16, --init) | ${inj.wallS.toFixed(1)} s | ${fmtRss(inj)} |`);
    console.log(`| peanut-onnx merge | ${mrg.wallS.toFixed(1)} s | ${fmtRss(mrg)} |`);
    console.log(`| peanut-onnx --help (CLI startup) | ${startup.wallS.toFixed(1)} s | ${fmtRss(startup)} |`);
    console.log(`model files: ${fmtGB(dirSize([model, `${model}_data`]))}; adapted ${fmtGB(dirSize([adapted, `${adapted}_data`]))}; merged ${fmtGB(dirSize([merged, `${merged}_data`]))}`);
    return 0;
  } finally {
    if (!keep) for (const p of [model, adapted, merged, copy, join(work, 'init.safetensors')]) for (const f of [p, `${p}_data`]) rmSync(f, { force: true });
    if (!keep && !dir) rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2));
