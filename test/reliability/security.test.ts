/**
 * Hostile inputs: external-data locations that lead out of the model's folder (a relative
 * escape, an absolute path, a symbolic link, a device or FIFO), sizes that would make a command
 * read or allocate without end (forged lengths and dims, a huge rank or depth, a regex that
 * backtracks exponentially), and safetensors headers whose offsets point into the header or into
 * each other. Each is refused with one line naming the problem, before anything is read or
 * written: the folder holding the inputs is byte-for-byte the same afterwards.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FIXTURES_DIR } from '../helpers/fixtures.ts';
import { editModelFile, expectRefused, initializer, setExternal, treeState, withExternalData } from '../helpers/reliability.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/formats/safetensors.ts';
import { loadModel } from '../../src/node/model-files.ts';
import { readAdapterMeta } from '../../src/adapter/adapter-meta.ts';

const BERT_DIR = join(FIXTURES_DIR, 'bert_tiny_opset14');
const BERT = join(BERT_DIR, 'model.onnx');
/** bert.encoder.layer.0.attention.self.query's weight, [32, 32] float32 (4096 bytes). */
const QUERY_W = 'onnx::MatMul_336';

interface Setup {
  root: string;
  /** A plain model with external data, and an adapted one (both in `root/model`). */
  plain: string;
  adapted: string;
  data: string;
  out: (name: string) => string;
}

/** A fresh copy of the models, so each test forges its own. */
function setup(): Setup {
  const root = tempDir('peanut-security-');
  const dir = join(root, 'model');
  mkdirSync(dir);
  writeFileSync(join(root, 'secret.bin'), Buffer.alloc(1 << 16, 0x42));
  const plain = join(dir, 'model.onnx');
  withExternalData(BERT, plain);
  const adapted = join(dir, 'adapted.onnx');
  const data = join(root, 'batch.safetensors');
  copyFileSync(join(BERT_DIR, 'batch.safetensors'), data);
  mkdirSync(join(root, 'out'));
  return { root, plain, adapted, data, out: (name) => join(root, 'out', name) };
}

let adaptedTemplate: string;
beforeAll(async () => {
  const s = setup();
  const r = await runCli(['inject', s.plain, '-o', s.adapted]);
  expect(r.code, r.stderr).toBe(0);
  adaptedTemplate = s.adapted;
});

/** `setup()` plus the adapted model with its data copied in. */
function setupAdapted(): Setup {
  const s = setup();
  for (const f of readdirSync(join(adaptedTemplate, '..')).filter((n) => n.startsWith('adapted.onnx'))) copyFileSync(join(adaptedTemplate, '..', f), join(s.root, 'model', f));
  return s;
}

/** Every command that reads a model, run on the forged `model` (plain or adapted as each needs). */
function commands(s: Setup): Array<[string, string[]]> {
  return [
    ['inspect', ['inspect', s.plain]],
    ['inject', ['inject', s.plain, '-o', s.out('adapted.onnx')]],
    ['merge', ['merge', s.adapted, '-o', s.out('merged.onnx')]],
    ['artifacts', ['artifacts', s.adapted, '--task', 'seq-cls', '-o', s.out('artifacts')]],
    ['train', ['train', s.adapted, '--data', s.data, '--task', 'seq-cls', '--steps', '1', '-o', s.out('run')]],
    ['grad', ['grad', s.adapted, '--data', s.data, '--task', 'seq-cls', '-o', s.out('grads.safetensors')]],
    ['export-peft', ['export-peft', s.adapted, '-o', s.out('peft')]],
  ];
}

/** Forges the query weight's external-data fields in both models. */
function forge(s: Setup, fields: Record<string, string>): void {
  for (const path of [s.plain, s.adapted]) {
    editModelFile(path, (p) => {
      const t = initializer(p, QUERY_W);
      for (const [k, v] of Object.entries(fields)) setExternal(t, k, v);
    });
  }
}

describe('external-data locations outside the model folder are refused by every command', () => {
  const cases: Array<[string, (s: Setup) => Record<string, string>, RegExp]> = [
    ['a relative escape (../)', () => ({ location: '../secret.bin', offset: '0' }), /tensor 'onnx::MatMul_336': external data location '\.\.\/secret\.bin' leads out of the model folder; .*put the data file there/],
    ['a deep escape (../../../../etc/passwd)', () => ({ location: '../../../../../../../../etc/passwd', offset: '0' }), /location '(\.\.\/)+etc\/passwd' leads out of the model folder/],
    ['an absolute path', (s) => ({ location: join(s.root, 'secret.bin'), offset: '0' }), /location '.*secret\.bin' is an absolute path/],
    [
      'a symbolic link out of the folder',
      (s) => {
        symlinkSync(join(s.root, 'secret.bin'), join(s.root, 'model', 'innocent.bin'));
        return { location: 'innocent.bin', offset: '0' };
      },
      /location 'innocent\.bin' is a link to a file outside the model folder/,
    ],
    [
      'a link to /dev/zero with a length of 2^33',
      (s) => {
        symlinkSync('/dev/zero', join(s.root, 'model', 'zero.bin'));
        return { location: 'zero.bin', offset: '0', length: String(2 ** 33) };
      },
      /has external data length 8589934592, but its dims \[32, 32\] and type float32 take 4096 bytes/,
    ],
  ];
  for (const [what, fields, pattern] of cases) {
    it(`${what}: inspect, inject, merge, artifacts, train, grad, export-peft exit 1 with one line, nothing written`, async () => {
      const s = setupAdapted();
      forge(s, fields(s));
      for (const [name, argv] of commands(s)) {
        const r = await expectRefused(s.root, argv, pattern);
        expect(r.stdout, name).toBe('');
      }
    });
  }

  it('a link to /dev/zero with a matching length is not a regular file', async () => {
    const s = setupAdapted();
    symlinkSync('/dev/zero', join(s.root, 'model', 'zero.bin'));
    forge(s, { location: 'zero.bin', offset: '0' });
    await expectRefused(s.root, ['inject', s.plain, '-o', s.out('a.onnx')], /location 'zero\.bin' is a link to a file outside the model folder/);
  });

  it.skipIf(spawnSync('mkfifo', ['--version']).status !== 0)('a FIFO inside the folder is not a regular file (reading it would block)', async () => {
    const s = setupAdapted();
    expect(spawnSync('mkfifo', [join(s.root, 'model', 'pipe.bin')]).status).toBe(0);
    forge(s, { location: 'pipe.bin', offset: '0' });
    for (const [, argv] of commands(s)) await expectRefused(s.root, argv, /location 'pipe\.bin' is not a regular file/);
  });

  it('a session for training is never created from a file outside the model folder, and a killed run\'s session file is removed', async () => {
    const s = setupAdapted();
    // A session file left by a process that is gone (a killed train).
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
    const stale = join(s.root, 'model', `.peanut-onnx-session.onnx.${dead}.1.tmp`);
    writeFileSync(stale, 'left over');
    const r = await runCli(['train', s.adapted, '--data', s.data, '--task', 'seq-cls', '--steps', '1', '-o', s.out('run')]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(stale)).toBe(false);
    expect(readdirSync(join(s.root, 'model')).filter((n) => n.includes('session'))).toEqual([]);
    expect(readdirSync(s.root).sort()).toEqual(['batch.safetensors', 'model', 'out', 'secret.bin']);
  });
});

describe('forged sizes are refused at load, before anything is read', () => {
  const inline = (mutate: (t: ReturnType<typeof initializer>) => void) => {
    const root = tempDir('peanut-sizes-');
    const model = join(root, 'model.onnx');
    copyFileSync(BERT, model);
    editModelFile(model, (p) => mutate(initializer(p, QUERY_W)));
    return { root, model };
  };
  const cases: Array<[string, (t: ReturnType<typeof initializer>) => void, RegExp]> = [
    ['dims [64, 2^26] over a 4 KiB weight', (t) => (t.dims = [64n, 2n ** 26n]), /tensor 'onnx::MatMul_336' has 4096 bytes of raw_data, but its dims \[64, 67108864\] and type float32 take 17179869184; the model is corrupt/],
    ['a negative dim', (t) => (t.dims = [-32n, 32n]), /tensor 'onnx::MatMul_336' has a negative dim \(-32\)/],
    ['dims whose product overflows', (t) => (t.dims = [2n ** 40n, 2n ** 40n]), /tensor 'onnx::MatMul_336' has dims \[1099511627776, 1099511627776\], more elements than any file can hold/],
    ['a short raw_data', (t) => (t.rawData = t.rawData.slice(0, 100)), /tensor 'onnx::MatMul_336' has 100 bytes of raw_data, but its dims \[32, 32\] and type float32 take 4096/],
    ['no data at all', (t) => (t.rawData = new Uint8Array(0)), /tensor 'onnx::MatMul_336' has no data for dims \[32, 32\]/],
    ['an unknown element type', (t) => (t.dataType = 99), /tensor 'onnx::MatMul_336' has element type dtype#99, which is not an ONNX type/],
  ];
  for (const [what, mutate, pattern] of cases) {
    it(`${what}: inspect and inject exit 1 with one line`, async () => {
      const { root, model } = inline(mutate);
      await expectRefused(root, ['inspect', model], pattern);
      await expectRefused(root, ['inject', model, '-o', join(root, 'a.onnx')], pattern);
    });
  }

  const external: Array<[string, Record<string, string>, RegExp]> = [
    ['an offset that is not a number', { offset: 'abc' }, /external data 'offset' is "abc", not a byte count/],
    ['a negative offset', { offset: '-8' }, /external data 'offset' is "-8", not a byte count/],
    ['a length in exponent form', { length: '4e3' }, /external data 'length' is "4e3", not a byte count/],
    ['a range past the end of the data file', { offset: '99999999' }, /external data file '.*\.onnx_data' is truncated: need bytes 99999999\.\.100004095, the file has \d+/],
    ['an empty location', { location: '' }, /is stored in external data but names no file/],
  ];
  for (const [what, fields, pattern] of external) {
    it(`external data with ${what}: every command exits 1 with one line`, async () => {
      const s = setupAdapted();
      forge(s, fields);
      for (const [, argv] of commands(s)) await expectRefused(s.root, argv, pattern);
    });
  }
});

describe('configuration bombs are refused before any allocation', () => {
  it('--rank 1e9 is a usage error (exit 2)', async () => {
    const root = tempDir();
    await expectRefused(root, ['inject', BERT, '-o', join(root, 'a.onnx'), '--rank', '1e9'], /rank must be an integer <= 16384, got '1e9'/, 2);
    await expectRefused(root, ['inspect', BERT, '--depth', '1000000'], /depth must be an integer <= 64, got '1000000'/, 2);
  });

  it('an adapter larger than its model (rank 16384, depth 4: 8.6·10^9 parameters) is refused', async () => {
    const root = tempDir();
    await expectRefused(root, ['inject', BERT, '-o', join(root, 'a.onnx'), '--rank', '16384', '--depth', '4'], /rank 16384 and depth 4 would give the adapter 8,594,128,896 parameters, more than the model itself \(.*\); choose a smaller --rank or --depth/);
  });

  function peftDir(root: string, config: Record<string, unknown>): string {
    const dir = join(root, 'adapter');
    mkdirSync(dir);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'PEANUT', r: 4, depth: 0, act_fn: 'relu', scaling: 1, ...config }));
    const w = (shape: number[]) => ({ dtype: 'F32' as const, shape, data: new Float32Array(shape[0]! * shape[1]!) });
    writeFileSync(join(dir, 'adapter_model.safetensors'), Buffer.concat(encodeSafetensors({ 'base_model.model.bert.encoder.layer.0.attention.self.query.peanut_A.weight': w([4, 32]), 'base_model.model.bert.encoder.layer.0.attention.self.query.peanut_B.weight': w([32, 4]) })));
    return dir;
  }

  it('import-peft with depth 1000000 exits 1 with one line', async () => {
    const root = tempDir();
    await expectRefused(root, ['import-peft', peftDir(root, { depth: 1_000_000 }), BERT, '-o', join(root, 'a.onnx')], /adapter_config\.json: 'depth' is 1000000; at most 64 is supported/);
  });

  it('import-peft with an exponentially backtracking target_modules regex finishes (matched in linear time)', async () => {
    const root = tempDir();
    // On 'bert.encoder.layer.0.attention.self.query' JavaScript's RegExp backtracks for hours.
    const r = await runCli(['import-peft', peftDir(root, { target_modules: '(([a-z0-9]+\\.?)+)+X' }), BERT, '-o', join(root, 'a.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/not selected by the adapter's target_modules; adapted anyway: bert\.encoder\.layer\.0\.attention\.self\.query/);
  }, 20_000);

  it('import-peft with a target_modules regex outside the supported syntax exits 1 naming it', async () => {
    const root = tempDir();
    await expectRefused(root, ['import-peft', peftDir(root, { target_modules: '(?=query).*' }), BERT, '-o', join(root, 'a.onnx')], /'target_modules' "\(\?=query\)\.\*" is not a supported regular expression: lookahead and lookbehind are not supported/);
  });

  it('--targets with an exponentially backtracking regex finishes', async () => {
    const root = tempDir();
    const r = await runCli(['inject', BERT, '-o', join(root, 'a.onnx'), '--targets', '(([a-z0-9_]+\\.?)+)+X']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no layer matches --targets/);
  }, 20_000);
});

describe('safetensors headers', () => {
  const header = (h: Record<string, unknown>, data: number) => {
    const json = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return new Uint8Array(Buffer.concat([len, json, Buffer.alloc(data, 7)]));
  };
  const f32 = (begin: number, end: number, shape = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const bad: Array<[string, Uint8Array, RegExp]> = [
    ['a negative offset', header({ a: f32(-8, 8, [4]) }, 8), /tensor 'a' has data_offsets \[-8,8\], not two non-negative integers/],
    ['an offset into the header (negative begin, right size)', header({ a: f32(-8, 0, [2]) }, 8), /data_offsets \[-8,0\], not two non-negative integers/],
    ['overlapping tensors', header({ a: f32(0, 8), b: f32(4, 12) }, 12), /tensor 'b' overlaps another tensor's bytes/],
    ['a gap between tensors', header({ a: f32(0, 4), b: f32(8, 12) }, 12), /there are 4 unused bytes before tensor 'b'/],
    ['bytes after the last tensor', header({ a: f32(0, 4) }, 8), /4 bytes after the last tensor belong to none/],
    ['reversed offsets', header({ a: f32(8, 0, [2]) }, 8), /tensor 'a' has data_offsets \[8, 0\], but its dtype and shape take 8 bytes/],
    ['a negative dim', header({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /tensor 'a' has shape \[-1\], not a list of non-negative integers/],
    ['a header that is a JSON array', header([] as unknown as Record<string, unknown>, 0), /header is not a JSON object/],
    ['metadata that is not strings', header({ __metadata__: { step: 3 } }, 0), /'__metadata__' is not a map of strings/],
    ['a tensor entry that is not an object', header({ a: 5 }, 0), /tensor 'a' has no dtype, shape and data_offsets/],
    ['a header length past the file', (() => {
      const b = header({}, 0);
      new DataView(b.buffer).setBigUint64(0, 2n ** 40n, true);
      return b;
    })(), /header length exceeds file size/],
  ];
  for (const [what, bytes, pattern] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => parseSafetensors(bytes, 'x.safetensors')).toThrow(expect.objectContaining({ code: 'E_BAD_SAFETENSORS', message: expect.stringMatching(pattern) }));
    });
  }

  it('the encoder\'s own output (tensors contiguous, zero-size tensors included) is accepted', () => {
    const chunks = encodeSafetensors({ a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }, e: { dtype: 'F32', shape: [0], data: new Float32Array(0) }, b: { dtype: 'I64', shape: [1], data: BigInt64Array.of(5n) } });
    const got = parseSafetensors(new Uint8Array(Buffer.concat(chunks)));
    expect([...got.tensors.keys()].sort()).toEqual(['a', 'b', 'e']);
    expect(Array.from(got.tensors.get('a')!.data as Float32Array)).toEqual([1, 2]);
  });

  it('inject --init and merge --checkpoint with overlapping offsets exit 1 with one line', async () => {
    const root = tempDir();
    const meta = readAdapterMeta(loadModel(adaptedTemplate))!;
    const [a, b] = meta.targets[0]!.params;
    const size = a!.shape[0] * a!.shape[1] * 4;
    const file = join(root, 'init.safetensors');
    // B's bytes start inside A's: both read as valid tensors by a parser that checks sizes only.
    writeFileSync(file, header({ [a!.name]: f32(0, size, a!.shape), [b!.name]: f32(size - 16, size - 16 + b!.shape[0] * b!.shape[1] * 4, b!.shape) }, size + b!.shape[0] * b!.shape[1] * 4 - 16));
    await expectRefused(root, ['inject', BERT, '-o', join(root, 'a.onnx'), '--init', file], /init\.safetensors is not a valid safetensors file: tensor '.*' overlaps another tensor's bytes/);
    const tree = treeState(root);
    const r = await runCli(['merge', adaptedTemplate, '-o', join(root, 'm.onnx'), '--checkpoint', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*overlaps another tensor's bytes\n$/);
    expect(treeState(root)).toEqual(tree);
  });
});

describe('malformed graphs and adapter records', () => {
  it('inject of a graph ONNX Runtime would not load (a node reads a value nothing produces) exits 1 and writes nothing', async () => {
    const root = tempDir();
    const model = join(root, 'model.onnx');
    copyFileSync(BERT, model);
    editModelFile(model, (p) => {
      const n = p.graph!.node.find((x) => x.opType === 'Add')!;
      n.input[0] = 'nowhere';
    });
    await expectRefused(root, ['inject', model, '-o', join(root, 'a.onnx')], /^error: the adapted model would not load in ONNX Runtime \(.*nowhere.*\); the input model is not a valid ONNX graph/);
  });

  it('merge of a model whose adapter record lost a field, or lists parameters of another shape, exits 1 naming the field', async () => {
    const root = tempDir();
    const adapted = join(root, 'adapted.onnx');
    copyFileSync(adaptedTemplate, adapted);
    for (const f of readdirSync(join(adaptedTemplate, '..')).filter((n) => n.startsWith('adapted.onnx_data'))) copyFileSync(join(adaptedTemplate, '..', f), join(root, f));
    const editMeta = (edit: (meta: { targets: Array<Record<string, unknown>> }) => void) =>
      editModelFile(adapted, (p) => {
        const e = p.metadataProps.find((x) => x.key === 'peanut_onnx.adapter')!;
        const meta = JSON.parse(e.value) as { targets: Array<Record<string, unknown>> };
        edit(meta);
        e.value = JSON.stringify(meta);
      });
    editMeta((m) => void (m.targets[1] = {}));
    await expectRefused(root, ['merge', adapted, '-o', join(root, 'm.onnx')], /metadata is malformed \(targets\[1\]\.module is not a string\); was it edited by hand\? Inject again from the original model/);
    copyFileSync(adaptedTemplate, adapted);
    editMeta((m) => void ((m.targets[0]!.params as Array<{ shape: number[] }>)[0]!.shape = [4, 99]));
    await expectRefused(root, ['export-peft', adapted, '-o', join(root, 'peft')], /metadata is malformed \(targets\[0\]\.params are not the peanut parameters of a \[32, 32\] layer/);
  });
});

describe('artifact directories', () => {
  it('a train.onnx whose external data is a link out of the folder is refused before ONNX Runtime opens it', async () => {
    const root = tempDir();
    const s = setupAdapted();
    const art = join(root, 'artifacts');
    expect((await runCli(['artifacts', s.adapted, '--task', 'seq-cls', '-o', art])).code).toBe(0);
    writeFileSync(join(root, 'secret.bin'), Buffer.alloc(1 << 20, 1));
    symlinkSync(join(root, 'secret.bin'), join(art, 'link.bin'));
    editModelFile(join(art, 'train.onnx'), (p) => {
      const t = p.graph!.initializer.find((x) => x.externalData.length > 0)!;
      setExternal(t, 'location', 'link.bin');
      setExternal(t, 'offset', '0');
    });
    await expectRefused(root, ['train', art, '--data', s.data, '--steps', '1', '-o', join(root, 'run')], /train\.onnx: tensor '.*': external data location 'link\.bin' is a link to a file outside the model folder/);
  });
});
