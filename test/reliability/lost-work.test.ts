/**
 * No command loses or mixes work: outputs never replace an input or a file the command did not
 * write; a model and its external data are replaced as a pair (a save killed at any moment leaves
 * the old pair or the new one); two runs cannot share a run directory; a failure mid-run keeps the
 * last good state; temp files of killed writes are removed by the next one; a resume with other
 * settings says so; parameters trained on other base weights are not merged, resumed or exported
 * as if they belonged.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { editModelFile, expectOneLine, expectRefused, initializer, treeState, withExternalData } from '../helpers/reliability.ts';
import { toyDir } from '../train/toy.ts';
import { PeanutError } from '../../src/errors.ts';
import { loadModel, saveModel } from '../../src/node/model-files.ts';
import { graphOf } from '../../src/onnx/model.ts';
import { externalRef, isExternal, tensorBytes } from '../../src/onnx/tensor.ts';
import { train } from '../../src/node/train.ts';
import { loadRunGraphs } from '../../src/node/artifacts.ts';
import { openExampleSet } from '../../src/node/data-files.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { runTraining } from '../../src/train/loop.ts';
import { resolveRun } from '../../src/train/run-config.ts';
import { encodeSafetensors } from '../../src/formats/safetensors.ts';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import type { ExampleSet } from '../../src/data/example-set.ts';
import type { TrainState } from '../../src/train/checkpoint.ts';

const BERT_DIR = join(FIXTURES_DIR, 'bert_tiny_opset14');
const BERT = join(BERT_DIR, 'model.onnx');
const QUERY_W = 'onnx::MatMul_336';
const SAVE_LOOP = fileURLToPath(new URL('../helpers/save-loop.ts', import.meta.url));

/** A process id that is certainly not running (a child that has exited). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

/** bert-tiny with its layer-0 query weight scaled by `factor` (another "base model" with the same layer names). */
function otherBase(path: string, factor: number): void {
  copyFileSync(BERT, path);
  editModelFile(path, (p) => {
    const t = initializer(p, QUERY_W);
    const f = new Float32Array(Uint8Array.prototype.slice.call(t.rawData).buffer);
    for (let i = 0; i < f.length; i++) f[i] = f[i]! * factor;
    t.rawData = new Uint8Array(f.buffer);
  });
}

describe('outputs never replace inputs or files the command did not write', () => {
  it('train --log naming the data, the model, its external data, an artifact file, a folder or a foreign file is refused', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const bert = join(root, 'bert');
    mkdirSync(bert);
    withExternalData(BERT, join(bert, 'model.onnx'));
    expect((await runCli(['inject', join(bert, 'model.onnx'), '-o', join(bert, 'adapted.onnx')])).code).toBe(0);
    const batch = join(root, 'batch.safetensors');
    copyFileSync(join(BERT_DIR, 'batch.safetensors'), batch);
    writeFileSync(join(root, 'notes.txt'), 'my notes\n');
    const toy = (log: string) => ['train', d.artifacts, '--data', d.train, '-o', join(root, 'run'), '--steps', '2', '--log', log];
    await expectRefused(root, toy(d.train), /output '.*train\.safetensors' is the same file as the input/);
    await expectRefused(root, toy(join(d.artifacts, 'train.onnx')), /output '.*artifacts\/train\.onnx' is the same file as the input/);
    await expectRefused(root, toy(join(d.artifacts, 'checkpoint.safetensors')), /is the same file as the input/);
    await expectRefused(root, toy(join(root, 'notes.txt')), /--log .*notes\.txt exists and is not a metrics log; choose another path/);
    await expectRefused(root, toy(root), /--log .* is a directory/);
    const bertTrain = (log: string) => ['train', join(bert, 'adapted.onnx'), '--data', batch, '--task', 'seq-cls', '-o', join(root, 'run'), '--steps', '1', '--log', log];
    await expectRefused(root, bertTrain(join(bert, 'adapted.onnx')), /is the same file as the input/);
    await expectRefused(root, bertTrain(join(bert, 'adapted.onnx_data')), /is the same file as the input/);
    await expectRefused(root, bertTrain(batch), /is the same file as the input/);
  });

  it('inject m.onnx -o m.onnx_data (the input\'s own data file) is refused; a foreign <out>_data is never written over', async () => {
    const root = tempDir();
    const m = join(root, 'm.onnx');
    withExternalData(BERT, m);
    await expectRefused(root, ['inject', m, '-o', join(root, 'm.onnx_data')], /output '.*m\.onnx_data' is an external data file of the input model/);
    await expectRefused(root, ['merge', m, '-o', join(root, 'm.onnx_data')], /external data file of the input model|has no tweakers/);
    // out.onnx_data exists and belongs to nobody's out.onnx: it stays as it is.
    writeFileSync(join(root, 'out.onnx_data'), 'not ours');
    const r = await runCli(['inject', m, '-o', join(root, 'out.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(root, 'out.onnx_data'), 'utf8')).toBe('not ours');
    const locs = new Set(graphOf(loadModel(join(root, 'out.onnx'))).initializer.filter(isExternal).map((t) => externalRef(t).location));
    expect([...locs]).toEqual([expect.stringMatching(/^out\.onnx_data\.[0-9a-f]{8}$/)]);
  });

  it('demo -o a folder holding the user\'s runs (names like the demo\'s, no demo marker) is refused and left alone', async () => {
    const root = tempDir();
    const runs = join(root, 'runs');
    mkdirSync(join(runs, 'run', 'checkpoints'), { recursive: true });
    writeFileSync(join(runs, 'run', 'checkpoints', 'step-900.safetensors'), 'a week of training');
    writeFileSync(join(runs, 'adapted.onnx'), 'mine');
    await expectRefused(root, ['demo', '-o', runs, '--steps', '1'], /output directory '.*runs' already holds other files \(adapted\.onnx, run\) that the demo did not write/);
  });
});

describe('a model and its data file are replaced as a pair', () => {
  it('each save names a data file of its own, replaces the model last, then removes the old data', () => {
    const root = tempDir();
    const src = loadModel(BERT);
    const out = join(root, 'out.onnx');
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      saveModel(src, out, { externalData: true });
      const locs = new Set(graphOf(loadModel(out)).initializer.filter(isExternal).map((t) => externalRef(t).location));
      expect(locs.size).toBe(1);
      names.push([...locs][0]!);
      expect(readdirSync(root).sort()).toEqual(['out.onnx', names.at(-1)!].sort());
    }
    expect(names[0]).toBe('out.onnx_data');
    expect(names[1]).toMatch(/^out\.onnx_data\.[0-9a-f]{8}$/);
    expect(names[2]).toBe('out.onnx_data');
  });

  it('a save killed at random moments leaves a model that loads with its own data, never an old model beside new data', async () => {
    const root = tempDir();
    const a = join(root, 'a', 'a.onnx');
    const b = join(root, 'b', 'b.onnx');
    mkdirSync(join(root, 'a'));
    mkdirSync(join(root, 'b'));
    withExternalData(BERT, a);
    otherBase(join(root, 'b-inline.onnx'), 1.5);
    withExternalData(join(root, 'b-inline.onnx'), b);
    // Each model says which one it is, so a model beside the other's data shows.
    for (const [path, who] of [[a, 'A'], [b, 'B']] as const) editModelFile(path, (p) => (p.docString = who));
    const weight = (path: string) => Buffer.from(tensorBytes(initializer(loadModel(path).proto, QUERY_W), join(path, '..'))).toString('hex');
    const want = { A: weight(a), B: weight(b) };
    const outDir = join(root, 'out');
    mkdirSync(outDir);
    const out = join(outDir, 'out.onnx');
    let kills = 0;
    for (let trial = 0; trial < 5; trial++) {
      const child = spawn(process.execPath, ['--import', 'tsx', SAVE_LOOP, a, b, out], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => {
        let saves = 0;
        child.stdout!.on('data', (d: Buffer) => {
          saves += (d.toString().match(/saved/g) ?? []).length;
          if (saves >= 2 && !child.killed) setTimeout(() => child.kill('SIGKILL'), 3 + trial * 7);
        });
        child.on('exit', () => resolve());
      });
      kills++;
      const m = loadModel(out);
      const who = m.proto.docString as 'A' | 'B';
      expect(['A', 'B']).toContain(who);
      expect(weight(out)).toBe(want[who]);
    }
    expect(kills).toBe(5);
    // The next save removes what killed saves left (temp files, tagged data files no model names).
    saveModel(loadModel(a), out, { externalData: true });
    const named = [...new Set(graphOf(loadModel(out)).initializer.filter(isExternal).map((t) => externalRef(t).location))];
    const left = readdirSync(outDir).filter((n) => n !== 'out.onnx' && !named.includes(n));
    // Only a kill in the one moment between the two renames of a first save can leave a plain
    // <out>_data that no model names; it is never mistaken for the pair's.
    expect(left.filter((n) => n !== 'out.onnx_data')).toEqual([]);
  }, 60_000);

  it('temp files of killed saves are removed by the next save beside them; live ones are kept', () => {
    const root = tempDir();
    const out = join(root, 'out.onnx');
    const dead = deadPid();
    const stale = [`.out.onnx.${dead}.1.tmp`, `.out.onnx_data.${dead}.2.tmp`];
    const live = `.out.onnx.${process.ppid}.3.tmp`;
    for (const f of [...stale, live, `.other.onnx.${dead}.1.tmp`]) writeFileSync(join(root, f), 'x');
    saveModel(loadModel(BERT), out);
    expect(readdirSync(root).sort()).toEqual([live, `.other.onnx.${dead}.1.tmp`, 'out.onnx'].sort());
  });
});

describe('runs do not mix', () => {
  it('a second train on a run directory in use fails at once with one line; the first finishes', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    const abort = new AbortController();
    const first = train(d.artifacts, { data: d.train, outDir: run, steps: 1_000_000, batchSize: 4, ep: 'cpu', threads: 1, saveEvery: 0, signal: abort.signal });
    while (!existsSync(join(run, '.lock'))) await new Promise((r) => setTimeout(r, 5));
    const before = treeState(root);
    const second = await runCli(['train', d.artifacts, '--data', d.train, '-o', run, '--steps', '3']);
    expectOneLine(second, /run' is in use by another training run \(process \d+\); wait for it to finish or choose another -o run directory|is in use by another training run/);
    const resumed = await runCli(['train', d.artifacts, '--data', d.train, '-o', run, '--steps', '3', '--resume']);
    expectOneLine(resumed, /is in use by another training run/);
    abort.abort();
    const r = await first;
    expect(r.interrupted).toBe(true);
    expect(existsSync(join(run, '.lock'))).toBe(false);
    // Only the first run wrote into the directory.
    expect(Object.keys(treeState(root)).filter((k) => !(k in before))).toEqual(['run/checkpoints', `run/checkpoints/step-${r.step}.safetensors`]);
  });

  it('a stale lock and temp files of a killed run are taken over and removed', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    mkdirSync(join(run, 'checkpoints'), { recursive: true });
    const dead = deadPid();
    writeFileSync(join(run, '.lock'), `${dead} ${(await import('node:os')).hostname()}\n`);
    writeFileSync(join(run, 'checkpoints', `.step-7.safetensors.${dead}.1.tmp`), 'half a checkpoint');
    writeFileSync(join(run, `.metrics.jsonl.${dead}.2.tmp`), '');
    const r = await runCli(['train', d.artifacts, '--data', d.train, '-o', run, '--steps', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(run).sort()).toEqual(['checkpoints', 'metrics.jsonl']);
    expect(readdirSync(join(run, 'checkpoints'))).toEqual(['step-2.safetensors']);
  });

  it('a failure found mid-run (bad data in a later batch) saves the last good state and says where', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const graphs = await loadRunGraphs(d.artifacts, undefined);
    const data = openExampleSet(d.train);
    let batches = 0;
    const failing: ExampleSet = {
      size: data.size,
      fields: data.fields,
      check: (spec) => data.check(spec),
      batch(indices, spec) {
        if (++batches === 4) throw new PeanutError('E_DATA', 'train.safetensors: example 13 is malformed');
        return data.batch(indices, spec);
      },
    };
    const run = resolveRun(graphs.manifest.hyperparameters, { steps: 10, batchSize: 4 }, data.size);
    const saved: TrainState[] = [];
    const err = await runTraining(nodeRuntime, graphs, {
      data: failing,
      state: graphs.init,
      hyper: run.hyper,
      stepsPerEpoch: run.stepsPerEpoch,
      ep: 'cpu',
      saveEvery: 0,
      evalEvery: 0,
      save: (s) => {
        saved.push(s);
        return `step-${s.step}`;
      },
      log: () => {},
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeanutError);
    expect((err as PeanutError).code).toBe('E_DATA');
    expect((err as Error).message).toBe('train.safetensors: example 13 is malformed (training stopped at step 4; the last good state, step 3, is saved in step-3: fix the cause, then continue with --resume)');
    expect(saved.map((s) => s.step)).toEqual([3]);
  });

  it('--resume with another batch size or learning rate is refused naming the changes; --force continues and says so', async () => {
    const root = tempDir();
    const d = toyDir(root);
    const run = join(root, 'run');
    const args = ['train', d.artifacts, '--data', d.train, '-o', run, '--batch-size', '4', '--lr', '0.01'];
    expect((await runCli([...args, '--steps', '3'])).code).toBe(0);
    const changed = ['train', d.artifacts, '--data', d.train, '-o', run, '--batch-size', '6', '--lr', '0.02', '--steps', '6', '--resume'];
    await expectRefused(root, changed, /--resume would continue with other settings than the run was started with \(--lr 0\.01 → 0\.02, --batch-size 4 → 6\); repeat the original values, or pass --force/);
    const forced = await runCli([...changed, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/note: continuing with --lr 0\.01 → 0\.02\nnote: continuing with --batch-size 4 → 6/);
  });
});

describe('parameters belong to the base weights they were trained on', () => {
  async function trainedOnA(root: string): Promise<{ adaptedA: string; adaptedB: string; run: string; batch: string }> {
    const batch = join(root, 'batch.safetensors');
    copyFileSync(join(BERT_DIR, 'batch.safetensors'), batch);
    const adaptedA = join(root, 'adapted-a.onnx');
    const adaptedB = join(root, 'adapted-b.onnx');
    otherBase(join(root, 'b.onnx'), 1.01);
    expect((await runCli(['inject', BERT, '-o', adaptedA])).code).toBe(0);
    expect((await runCli(['inject', join(root, 'b.onnx'), '-o', adaptedB])).code).toBe(0);
    const run = join(root, 'run');
    const t = await runCli(['train', adaptedA, '--data', batch, '--task', 'seq-cls', '--steps', '2', '--lr', '0.01', '-o', run]);
    expect(t.code, t.stderr).toBe(0);
    return { adaptedA, adaptedB, run, batch };
  }

  it('merge --checkpoint of a run on another base model with the same layer names is refused; on its own model it merges', async () => {
    const root = tempDir();
    const { adaptedA, adaptedB, run } = await trainedOnA(root);
    await expectRefused(root, ['merge', adaptedB, '-o', join(root, 'merged.onnx'), '--checkpoint', run], /step-2\.safetensors was trained on other base weights than .*adapted-b\.onnx: the weight of bert\.encoder\.layer\.0\.attention\.self\.query differs \(fingerprint w0h1:[0-9a-f]{16} vs w0h1:[0-9a-f]{16}\); PEANuT's ΔW depends on W0/);
    const ok = await runCli(['merge', adaptedA, '-o', join(root, 'merged.onnx'), '--checkpoint', run]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toBe('');
  });

  it('train --resume and export-peft --model over other base weights are refused', async () => {
    const root = tempDir();
    const { adaptedB, run, batch } = await trainedOnA(root);
    await expectRefused(root, ['train', adaptedB, '--data', batch, '--task', 'seq-cls', '--steps', '4', '--lr', '0.01', '-o', run, '--resume'], /step-2\.safetensors was trained on other base weights than .*adapted-b\.onnx/);
    await expectRefused(root, ['export-peft', join(run, 'checkpoints', 'step-2.safetensors'), '--model', adaptedB, '-o', join(root, 'peft')], /was trained on other base weights than the model given with --model/);
  });

  it('a checkpoint from before fingerprints still merges, with a note', async () => {
    const root = tempDir();
    const { adaptedB, run } = await trainedOnA(root);
    const ckpt = join(run, 'checkpoints', 'step-2.safetensors');
    const { tensors, metadata } = readSafetensors(ckpt);
    const peanut = JSON.parse(metadata.peanut!) as { modules: Record<string, { w0Hash?: string }> };
    for (const m of Object.values(peanut.modules)) delete m.w0Hash;
    const old = join(root, 'old.safetensors');
    writeFileSync(old, Buffer.concat(encodeSafetensors(tensors, { ...metadata, peanut: JSON.stringify(peanut) })));
    const r = await runCli(['merge', adaptedB, '-o', join(root, 'merged.onnx'), '--checkpoint', old]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^note: 4 layer\(s\) not checked for the same base weights: .*old\.safetensors or .*adapted-b\.onnx was written by an older peanut-onnx, without fingerprints\n$/);
  });

  it('merge of an adapted model whose W0 was edited after injection is refused', async () => {
    const root = tempDir();
    const adapted = join(root, 'adapted.onnx');
    expect((await runCli(['inject', BERT, '-o', adapted])).code).toBe(0);
    editModelFile(adapted, (p) => {
      const t = initializer(p, QUERY_W);
      const raw = t.rawData.slice();
      raw[0] = raw[0]! ^ 1;
      t.rawData = raw;
    });
    await expectRefused(root, ['merge', adapted, '-o', join(root, 'merged.onnx')], /the weight 'onnx::MatMul_336' of bert\.encoder\.layer\.0\.attention\.self\.query is not the one the adapter was injected over .*inject again from the original model/);
    await expectRefused(root, ['merge', adapted, '-o', join(root, 'merged.onnx'), '--engine', 'ort'], /is not the one the adapter was injected over/);
  });

  it('merge without --checkpoint of an untrained adapter says ΔW = 0', async () => {
    const root = tempDir();
    const adapted = join(root, 'adapted.onnx');
    expect((await runCli(['inject', BERT, '-o', adapted])).code).toBe(0);
    const r = await runCli(['merge', adapted, '-o', join(root, 'merged.onnx')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('note: the parameters give ΔW = 0 (B is all zeros), so the merged weights equal the original ones; pass the trained values with --checkpoint <run dir>\n');
  });
});
