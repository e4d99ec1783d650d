/**
 * Output paths that cannot be written (a read-only folder, a missing one, a folder where a file
 * goes, a path under /proc where Node's recursive mkdir would spin forever) end every command
 * with one line and exit 1, having written nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { expectRefused } from '../helpers/reliability.ts';
import { toyDir } from '../train/toy.ts';

const BERT_DIR = join(FIXTURES_DIR, 'bert_tiny_opset14');
const BERT = join(BERT_DIR, 'model.onnx');
const linux = process.platform === 'linux';

/** A folder in which creating a file fails: a read-only one, or (as root, who ignores modes) /sys/kernel. */
function unwritableFolder(root: string): string | undefined {
  const ro = join(root, 'read-only');
  mkdirSync(ro);
  chmodSync(ro, 0o555);
  for (const dir of [ro, ...(linux ? ['/sys/kernel'] : [])]) {
    try {
      writeFileSync(join(dir, 'probe'), '');
      rmSync(join(dir, 'probe'));
    } catch {
      return dir;
    }
  }
  return undefined;
}

let root: string;
let adapted: string;
let batch: string;
let toy: ReturnType<typeof toyDir>;
let ro: string | undefined;
beforeAll(async () => {
  root = tempDir('peanut-one-line-');
  adapted = join(root, 'adapted.onnx');
  batch = join(root, 'batch.safetensors');
  copyFileSync(join(BERT_DIR, 'batch.safetensors'), batch);
  expect((await runCli(['inject', BERT, '-o', adapted])).code).toBe(0);
  toy = toyDir(join(root, 'toy'));
  mkdirSync(join(root, 'a-folder'));
  ro = unwritableFolder(root);
});

/** Every command that writes, with its output under `out` (a folder path, or a file path where a file goes). */
function writers(out: (name: string) => string): Array<string[]> {
  return [
    ['inject', BERT, '-o', out('a.onnx')],
    ['inject', BERT, '-o', join(root, 'ok.onnx'), '--save-tweaker', out('t.safetensors')],
    ['merge', adapted, '-o', out('m.onnx')],
    ['grad', adapted, '--data', batch, '--task', 'seq-cls', '-o', out('g.safetensors')],
    ['artifacts', adapted, '--task', 'seq-cls', '-o', out('artifacts')],
    ['train', toy.artifacts, '--data', toy.train, '--steps', '1', '-o', out('run')],
    ['train', toy.artifacts, '--data', toy.train, '--steps', '1', '-o', join(root, 'run-ok'), '--log', out('m.jsonl')],
    ['export-peft', adapted, '-o', out('peft')],
    ['import-peft', join(root, 'no-adapter'), BERT, '-o', out('i.onnx')],
  ];
}

describe('unwritable outputs: one line, exit 1, nothing written', () => {
  it('a folder that cannot be written (EACCES / EPERM / EROFS)', async (ctx) => {
    if (!ro) ctx.skip();
    for (const argv of writers((n) => join(ro!, n))) {
      if (argv[0] === 'import-peft') continue; // its adapter is missing: a different refusal
      await expectRefused(root, argv, /^error: cannot (write|create the folder) .*: (permission denied|operation not permitted|the file system is read-only) \(E[A-Z]+\); choose an output path in a folder you can write to$/);
    }
  });

  it('a folder that does not exist, for a file output (ENOENT)', async () => {
    const missing = join(root, 'missing');
    for (const argv of writers((n) => join(missing, n)).filter((a) => ['inject', 'merge', 'grad'].includes(a[0]!) && !a.includes('--save-tweaker'))) {
      await expectRefused(root, argv, /output directory '.*missing' does not exist; create it first/);
    }
  });

  it('a folder where a file goes (EISDIR)', async () => {
    const folder = join(root, 'a-folder');
    for (const argv of [
      ['inject', BERT, '-o', folder],
      ['inject', BERT, '-o', join(root, 'ok.onnx'), '--save-tweaker', folder],
      ['merge', adapted, '-o', folder],
      ['grad', adapted, '--data', batch, '--task', 'seq-cls', '-o', folder],
    ]) await expectRefused(root, argv, /output '.*a-folder' is a directory; give a file path/);
    await expectRefused(root, ['train', toy.artifacts, '--data', toy.train, '--steps', '1', '-o', join(root, 'run-ok'), '--log', folder], /--log .*a-folder is a directory/);
    await expectRefused(root, ['train', toy.artifacts, '--data', toy.train, '--steps', '1', '-o', batch], /-o .*batch\.safetensors is a file; the run directory must be a directory/);
  });

  it.skipIf(!linux)('a path under /proc (where a recursive mkdir loops forever) fails at once', async () => {
    for (const argv of writers((n) => join('/proc/peanut-onnx-nowhere', n))) {
      if (argv[0] === 'import-peft') continue;
      await expectRefused(root, argv, /^error: (output directory '\/proc\/peanut-onnx-nowhere' does not exist; create it first|cannot (write|create the folder) \/proc\/peanut-onnx-nowhere.*\(ENOENT\).*)$/);
    }
    await expectRefused(root, ['demo', '-o', '/proc/peanut-onnx-nowhere', '--steps', '1'], /cannot create the folder \/proc\/peanut-onnx-nowhere \(ENOENT\)/);
    await expectRefused(root, ['demo', '-o', '/proc/peanut-onnx-nowhere/demo', '--steps', '1'], /the folder \/proc\/peanut-onnx-nowhere does not exist; create it first/);
  }, 30_000);
});

describe('a run that fails before its first checkpoint', () => {
  it('leaves nothing behind (a model ONNX Runtime refuses once training starts)', async () => {
    const dir = tempDir();
    const d = toyDir(dir);
    // The toy train graph with an op ONNX Runtime does not know: everything checks out until the session is created.
    const { editModelFile } = await import('../helpers/reliability.ts');
    editModelFile(join(d.artifacts, 'train.onnx'), (p) => void (p.graph!.node[0]!.opType = 'NoSuchOp'));
    await expectRefused(dir, ['train', d.artifacts, '--data', d.train, '--steps', '2', '-o', join(dir, 'run')], /onnxruntime-node cannot load the model: .*NoSuchOp/);
  });

  it('leaves nothing behind when the very first step is not finite (NaN labels)', async () => {
    const dir = tempDir();
    const d = toyDir(dir);
    const nan = join(dir, 'nan.safetensors');
    const { encodeSafetensors } = await import('../../src/formats/safetensors.ts');
    writeFileSync(nan, Buffer.concat(encodeSafetensors({ x: { dtype: 'F32', shape: [4, 4], data: new Float32Array(16).fill(1) }, labels: { dtype: 'F32', shape: [4, 1], data: new Float32Array(4).fill(NaN) } })));
    await expectRefused(dir, ['train', d.artifacts, '--data', nan, '--steps', '2', '-o', join(dir, 'run')], /^error: loss is NaN at step 1 \(lr .*\), the first step of the run; nothing was saved\. Lower --lr or set --grad-clip and start again/, 1, true);
  });
});
