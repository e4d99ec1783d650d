/**
 * A seeded fuzzer for the command line. Each case takes one input of a small corpus (the shipped
 * model, the PyTorch-oracle fixtures, adapted models, external-data variants, a checkpoint, a
 * tweaker file, a PEFT adapter, a data batch), damages it, and runs one command on it in process
 * through the CLI's `main()`:
 *
 *   - structural mutations of models at the protobuf level: dims, element types, raw_data
 *     lengths, external-data fields, node inputs, outputs and op types, attributes, opset
 *     imports, graph inputs and outputs, and the adapter-metadata JSON;
 *   - byte mutations of any file (flips, truncation, insertion, overwritten runs), and
 *     JSON-level mutations of safetensors headers and adapter_config.json;
 *   - hostile option values (ranks, depths, regexes, step counts).
 *
 * Every case must end as a user would want: exit 0, 1 or 2; no stack trace; its inputs
 * byte-identical; nothing written when it is refused, and no temp file left; every `.onnx` an
 * exit-0 run wrote loads in ONNX Runtime; every `.safetensors` it wrote parses. Cases are reproducible from (seed, case number).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import { create, fromBinary, ModelProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema, StringStringEntryProtoSchema, toBinary, type ModelProto, type TensorProto } from '../../src/onnx/proto.ts';
import { parseSafetensors } from '../../src/formats/safetensors.ts';
import { nodeRuntime } from '../../src/node/onnxruntime.ts';
import { Random } from '../../src/util/random.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');

/** A model the corpus is built from, with the task and one batch of data that fit it. */
interface Base {
  name: string;
  model: string;
  task: 'seq-cls' | 'causal-lm';
  data: string;
}

const BASES: readonly Base[] = [
  { name: 'shipped', model: join(ROOT, 'graphs', 'bert-tiny.onnx'), task: 'seq-cls', data: join(ROOT, 'graphs', 'demo', 'eval.jsonl') },
  { name: 'bert', model: join(FIXTURES, 'bert_tiny_opset14', 'model.onnx'), task: 'seq-cls', data: join(FIXTURES, 'bert_tiny_opset14', 'batch.safetensors') },
  { name: 'gpt2', model: join(FIXTURES, 'gpt2_tiny', 'model.onnx'), task: 'causal-lm', data: join(FIXTURES, 'gpt2_tiny', 'batch.safetensors') },
];

/** The prepared inputs of one base: every file a case may start from. */
interface Prepared extends Base {
  dir: string;
  plain: string;
  adapted: string;
  /** The same two with their large tensors in `<file>_data`, each in a folder of its own. */
  plainExt: string;
  adaptedExt: string;
  tweaker: string;
  /** A training checkpoint (one step) of `adapted`; only for bases with a safetensors batch. */
  checkpoint?: string;
  /** A PEFT adapter directory exported from `adapted`. */
  peft: string;
}

export interface Corpus {
  root: string;
  bases: Prepared[];
}

/** Runs the CLI in process, capturing what it prints. */
export async function runMain(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  const log = console.log;
  const warn = console.warn;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  console.log = (...args: unknown[]) => void (stdout += `${args.join(' ')}\n`);
  console.warn = (...args: unknown[]) => void (stderr += `${args.join(' ')}\n`);
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    console.log = log;
    console.warn = warn;
  }
}

async function must(argv: string[]): Promise<void> {
  const r = await runMain(argv);
  if (r.code !== 0) throw new Error(`fuzz corpus: \`${argv.join(' ')}\` failed (${r.code}): ${r.stderr}`);
}

/** Builds the corpus under `root` (a few seconds: injects, one training step, an export). */
export async function prepareCorpus(root: string): Promise<Corpus> {
  const bases: Prepared[] = [];
  for (const b of BASES) {
    const dir = join(root, b.name);
    mkdirSync(join(dir, 'ext-plain'), { recursive: true });
    mkdirSync(join(dir, 'ext-adapted'));
    const p: Prepared = {
      ...b,
      dir,
      plain: join(dir, 'model.onnx'),
      adapted: join(dir, 'adapted.onnx'),
      plainExt: join(dir, 'ext-plain', 'model.onnx'),
      adaptedExt: join(dir, 'ext-adapted', 'adapted.onnx'),
      tweaker: join(dir, 'tweaker.safetensors'),
      peft: join(dir, 'peft'),
    };
    copyFileSync(b.model, p.plain);
    copyFileSync(b.data, join(dir, basename(b.data)));
    p.data = join(dir, basename(b.data));
    await must(['inject', p.plain, '-o', p.adapted, '--rank', '4', '--seed', '1', '--save-tweaker', p.tweaker]);
    // Same model with its weights in external data: inject writes external data when its input has it.
    const { loadModel, saveModel } = await import('../../src/node/model-files.ts');
    saveModel(loadModel(p.plain), p.plainExt, { externalData: true });
    await must(['inject', p.plainExt, '-o', p.adaptedExt, '--rank', '4', '--seed', '1']);
    await must(['export-peft', p.adapted, '-o', p.peft]);
    if (p.data.endsWith('.safetensors')) {
      await must(['train', p.adapted, '--data', p.data, '--task', p.task, '--steps', '1', '--ep', 'cpu', '--threads', '1', '-o', join(dir, 'run')]);
      p.checkpoint = join(dir, 'run', 'checkpoints', 'step-1.safetensors');
    }
    bases.push(p);
  }
  return { root, bases };
}

// ---- mutations ---------------------------------------------------------------------------------

const pick = <T>(rng: Random, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

const WEIRD_INTS = [-1, 0, 1, 2, 3, 7, 64, 1023, 2 ** 16, 2 ** 26, 2 ** 31, 2 ** 33, 2 ** 40, 2 ** 53];
const WEIRD_NUMBER_TEXTS = ['-1', '0', '1', 'abc', '', '1e3', '4096', '99999999999', '18446744073709551616', '0x10', ' 12', '3.5'];
const WEIRD_LOCATIONS = ['../secret.bin', '../../../../etc/passwd', '/etc/passwd', '', 'missing.bin', 'a\u0000b', '.', 'sub/../model.onnx_data', 'model.onnx', '/dev/zero', '..'];

function tensorsOf(p: ModelProto): TensorProto[] {
  const out = [...(p.graph?.initializer ?? [])];
  for (const n of p.graph?.node ?? []) for (const a of n.attribute) if (a.t) out.push(a.t);
  return out;
}

function setEntry(t: TensorProto, key: string, value: string): void {
  const e = t.externalData.find((x) => x.key === key);
  if (e) e.value = value;
  else t.externalData.push(create(StringStringEntryProtoSchema, { key, value }));
}

/** One random protobuf-level edit of a model; returns what it did. */
function mutateModel(p: ModelProto, rng: Random): string {
  const g = p.graph!;
  const tensors = tensorsOf(p);
  const external = tensors.filter((t) => t.externalData.length > 0);
  const kinds = tensors.length && g.node.length ? ['dims', 'dtype', 'raw', 'node-input', 'node-output', 'op-type', 'drop-node', 'attribute', 'opset', 'graph-io', 'metadata', 'ir'] : ['opset', 'metadata', 'ir'];
  if (external.length) kinds.push('external', 'external', 'external');
  const kind = pick(rng, kinds);
  switch (kind) {
    case 'dims': {
      const t = pick(rng, tensors);
      const r = rng.next();
      if (r < 0.2) t.dims.push(BigInt(pick(rng, WEIRD_INTS)));
      else if (r < 0.35 && t.dims.length) t.dims.pop();
      else if (t.dims.length) t.dims[rng.int(t.dims.length)] = BigInt(pick(rng, WEIRD_INTS));
      else t.dims = [BigInt(pick(rng, WEIRD_INTS))];
      return `dims of '${t.name}' → [${t.dims.join(', ')}]`;
    }
    case 'dtype': {
      const t = pick(rng, tensors);
      t.dataType = pick(rng, [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 21, 26, 27, 99]);
      return `data type of '${t.name}' → ${t.dataType}`;
    }
    case 'raw': {
      const t = pick(rng, tensors);
      const r = rng.next();
      const raw = t.rawData;
      if (r < 0.3) t.rawData = raw.slice(0, rng.int(raw.byteLength + 1));
      else if (r < 0.5) t.rawData = new Uint8Array(0);
      else if (r < 0.7) {
        const more = new Uint8Array(raw.byteLength + 1 + rng.int(64));
        more.set(raw);
        t.rawData = more;
      } else {
        const copy = raw.slice();
        for (let i = 0; i < Math.min(16, copy.length); i++) copy[rng.int(copy.length)] = rng.int(256);
        t.rawData = copy;
        // NaN/Inf-bit patterns in weights are fine for loading; they test the numeric paths.
      }
      return `raw_data of '${t.name}' → ${t.rawData.byteLength} bytes`;
    }
    case 'external': {
      const t = pick(rng, external);
      const key = pick(rng, ['location', 'offset', 'length', 'offset', 'length']);
      const value = key === 'location' ? pick(rng, WEIRD_LOCATIONS) : pick(rng, WEIRD_NUMBER_TEXTS);
      setEntry(t, key, value);
      return `external '${key}' of '${t.name}' → ${JSON.stringify(value)}`;
    }
    case 'node-input': {
      const n = pick(rng, g.node);
      const r = rng.next();
      if (r < 0.4 && n.input.length) n.input[rng.int(n.input.length)] = pick(rng, ['nowhere', '', pick(rng, g.node).output[0] ?? 'x', g.initializer[0]?.name ?? 'y']);
      else if (r < 0.7 && n.input.length) n.input.pop();
      else n.input.push(pick(rng, ['nowhere', '', g.input[0]?.name ?? 'z']));
      return `inputs of node '${n.name}' → ${JSON.stringify(n.input)}`;
    }
    case 'node-output': {
      const n = pick(rng, g.node);
      const other = pick(rng, g.node);
      if (n.output.length) n.output[rng.int(n.output.length)] = pick(rng, [other.output[0] ?? 'dup', '', g.input[0]?.name ?? 'in', 'fresh']);
      return `outputs of node '${n.name}' → ${JSON.stringify(n.output)}`;
    }
    case 'op-type': {
      const n = pick(rng, g.node);
      n.opType = pick(rng, ['', 'NoSuchOp', 'MatMul', 'Add', 'Gemm', 'Softmax', 'Loop', 'Identity']);
      if (rng.next() < 0.2) n.domain = pick(rng, ['com.microsoft', 'ai.onnx.ml', 'nowhere']);
      return `op type of node '${n.name}' → ${n.domain ? `${n.domain}.` : ''}${n.opType}`;
    }
    case 'drop-node': {
      const i = rng.int(g.node.length);
      const [n] = g.node.splice(i, 1);
      if (rng.next() < 0.3) g.node.splice(rng.int(g.node.length + 1), 0, create(NodeProtoSchema, { ...n! }));
      return `removed node '${n!.name}'`;
    }
    case 'attribute': {
      const withAttrs = g.node.filter((n) => n.attribute.length > 0);
      if (!withAttrs.length) return 'no attribute to change';
      const n = pick(rng, withAttrs);
      const a = pick(rng, n.attribute);
      const r = rng.next();
      if (r < 0.4) a.i = BigInt(pick(rng, [-100, -1, 0, 1, 2, 5, 99]));
      else if (r < 0.6) a.ints = [BigInt(pick(rng, [-1, 0, 1, 99]))];
      else if (r < 0.8) a.f = pick(rng, [NaN, Infinity, -1, 0, 1e30]);
      else a.type = pick(rng, [0, 1, 2, 3, 7, 99]) as typeof a.type;
      return `attribute '${a.name}' of node '${n.name}' changed`;
    }
    case 'opset': {
      const r = rng.next();
      if (r < 0.5 && p.opsetImport.length) p.opsetImport[0]!.version = BigInt(pick(rng, [0, 1, 5, 6, 7, 9, 13, 99, -1]));
      else if (r < 0.7) p.opsetImport = p.opsetImport.filter((o) => o.domain !== '');
      else p.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: pick(rng, ['', 'com.microsoft', 'x.y']), version: BigInt(pick(rng, [1, 13, 99])) }));
      return `opset imports → ${p.opsetImport.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(', ')}`;
    }
    case 'graph-io': {
      const r = rng.next();
      if (r < 0.3 && g.output.length) g.output.splice(rng.int(g.output.length), 1);
      else if (r < 0.5 && g.input.length) g.input.splice(rng.int(g.input.length), 1);
      else {
        const v = pick(rng, [...g.input, ...g.output]);
        const tt = v?.type?.value;
        if (tt && tt.case === 'tensorType') {
          if (rng.next() < 0.5) tt.value.elemType = pick(rng, [0, 1, 6, 7, 9, 11, 99]);
          else for (const d of tt.value.shape?.dim ?? []) if (rng.next() < 0.5) d.value = { case: 'dimValue', value: BigInt(pick(rng, [-1, 0, 1, 2 ** 20])) };
        }
      }
      return 'graph inputs/outputs changed';
    }
    case 'metadata': {
      const entry = p.metadataProps.find((e) => e.key === 'peanut_onnx.adapter');
      if (!entry) {
        p.metadataProps.push(create(StringStringEntryProtoSchema, { key: 'peanut_onnx.adapter', value: pick(rng, ['{', '{}', '{"version":1,"config":{"method":"peanut","r":4},"targets":[]}', 'null', '[]']) }));
        return 'adapter metadata added';
      }
      return `adapter metadata: ${mutateJson(entry, rng)}`;
    }
    case 'ir': {
      p.irVersion = BigInt(pick(rng, [0, 1, 3, 7, 99, -1]));
      return `IR version → ${p.irVersion}`;
    }
  }
  return kind;
}

const JSON_VALUES: unknown[] = [null, -1, 0, 1, 1e9, 2 ** 40, -(2 ** 31), 1.5, NaN, '', 'x', '(a+)+$', 'all-linear', [], [1, 2], {}, { a: 1 }, true, '-1'];

/** Changes one value somewhere in a JSON document (or breaks its text); returns what it did. */
function mutateJsonValue(value: unknown, rng: Random): { value: unknown; what: string } {
  const paths: Array<Array<string | number>> = [];
  const walk = (v: unknown, at: Array<string | number>) => {
    paths.push(at);
    if (paths.length > 5000) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
  };
  walk(value, []);
  const path = pick(rng, paths);
  const r = rng.next();
  const replacement = r < 0.1 ? undefined : pick(rng, JSON_VALUES);
  if (path.length === 0) return { value: replacement, what: `document → ${JSON.stringify(replacement)}` };
  let parent = value as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (replacement === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = replacement;
  return { value, what: `${path.join('.')} → ${replacement === undefined ? 'removed' : JSON.stringify(replacement)}` };
}

function mutateJson(entry: { value: string }, rng: Random): string {
  if (rng.next() < 0.15) {
    entry.value = entry.value.slice(0, rng.int(entry.value.length));
    return 'truncated';
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.value);
  } catch {
    return 'unparsable as it was';
  }
  const { value, what } = mutateJsonValue(parsed, rng);
  entry.value = JSON.stringify(value) ?? 'undefined';
  return what;
}

/** One random byte-level edit of a file's bytes. */
function mutateBytes(bytes: Uint8Array, rng: Random): { bytes: Uint8Array; what: string } {
  const r = rng.next();
  const n = bytes.byteLength;
  if (r < 0.25) {
    const cut = rng.int(n + 1);
    return { bytes: bytes.slice(0, cut), what: `truncated to ${cut} of ${n} bytes` };
  }
  if (r < 0.5) {
    const out = bytes.slice();
    const flips = 1 + rng.int(8);
    // Most flips land in the first KiB, where headers and the graph structure are.
    for (let i = 0; i < flips; i++) {
      const at = rng.next() < 0.7 ? rng.int(Math.min(n, 1024)) : rng.int(n);
      out[at] = out[at]! ^ (1 << rng.int(8));
    }
    return { bytes: out, what: `${flips} bit flip(s)` };
  }
  if (r < 0.75) {
    const at = rng.int(n + 1);
    const junk = Uint8Array.from({ length: 1 + rng.int(32) }, () => rng.int(256));
    const out = new Uint8Array(n + junk.length);
    out.set(bytes.subarray(0, at));
    out.set(junk, at);
    out.set(bytes.subarray(at), at + junk.length);
    return { bytes: out, what: `${junk.length} bytes inserted at ${at}` };
  }
  const out = bytes.slice();
  const at = rng.int(Math.max(1, n));
  const len = Math.min(n - at, 1 + rng.int(256));
  out.fill(pick(rng, [0, 0xff, 0x7f, 0x80]), at, at + len);
  return { bytes: out, what: `${len} bytes overwritten at ${at}` };
}

/** A safetensors file with one value of its JSON header changed (kept a valid length prefix). */
function mutateSafetensorsHeader(bytes: Uint8Array, rng: Random): { bytes: Uint8Array; what: string } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString('utf8'));
  } catch {
    return mutateBytes(bytes, rng);
  }
  const { value, what } = mutateJsonValue(header, rng);
  const json = Buffer.from(JSON.stringify(value) ?? 'null');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return { bytes: new Uint8Array(Buffer.concat([prefix, json, bytes.subarray(8 + len)])), what: `header ${what}` };
}

// ---- cases ------------------------------------------------------------------------------------

export interface FuzzCase {
  /** What was damaged and how, and the command line (paths relative to the case folder). */
  description: string;
  argv: string[];
  /** Files the command reads (must be byte-identical afterwards). */
  inputs: string[];
  dir: string;
}

/** Copies a prepared file (with its data file, if any) into the case folder; returns its new path. */
function copyIn(src: string, dir: string): string {
  const dest = join(dir, basename(src));
  if (statSync(src).isDirectory()) cpSync(src, dest, { recursive: true });
  else copyFileSync(src, dest);
  for (const f of readdirSync(join(src, '..'))) if (f.startsWith(`${basename(src)}_data`)) copyFileSync(join(src, '..', f), join(dir, f));
  return dest;
}

function editModel(path: string, rng: Random): string {
  const proto = fromBinary(ModelProtoSchema, readFileSync(path));
  const edits = 1 + rng.int(3);
  const what: string[] = [];
  for (let i = 0; i < edits; i++) what.push(mutateModel(proto, rng));
  writeFileSync(path, toBinary(ModelProtoSchema, proto));
  return what.join('; ');
}

function editBytes(path: string, rng: Random, header = false): string {
  const r = header ? mutateSafetensorsHeader(readFileSync(path), rng) : mutateBytes(readFileSync(path), rng);
  writeFileSync(path, r.bytes);
  return r.what;
}

const HOSTILE_TARGETS = ['(([a-z0-9]+\\.?)+)+X', '(a|a)*b', '.*', '(?=q).*', '[', 'query,value', 'all-linear', 'x'.repeat(5000), '((((a{1000}){1000}){1000}){1000})', '.*\\.(query|c_attn)'];

/** Builds case `id` of a run with `seed` in a fresh folder under `root`. */
export function makeCase(corpus: Corpus, seed: number, id: number, root: string): FuzzCase {
  const rng = Random.forKey(seed, `fuzz-case-${id}`);
  const b = pick(rng, corpus.bases);
  const dir = join(root, `case-${id}`);
  mkdirSync(dir, { recursive: true });
  const out = (name: string) => join(dir, 'out', name);
  mkdirSync(join(dir, 'out'));
  const data = copyIn(b.data, dir);
  const step = ['--steps', '1', '--ep', 'cpu', '--threads', '1'];
  const kind = pick(rng, ['plain', 'plain', 'plain-ext', 'adapted', 'adapted', 'adapted-ext', 'model-bytes', 'checkpoint', 'tweaker', 'peft', 'data', 'options', 'train-options']);
  let what: string;
  let argv: string[];
  const inputs: string[] = [data];
  switch (kind) {
    case 'plain':
    case 'plain-ext': {
      const m = copyIn(kind === 'plain' ? b.plain : b.plainExt, dir);
      what = editModel(m, rng);
      const peft = copyIn(b.peft, dir);
      argv = pick(rng, [['inspect', m], ['inspect', m, '--json'], ['inject', m, '-o', out('adapted.onnx')], ['inject', m, '-o', out('adapted.onnx'), '--method', 'lora'], ['import-peft', peft, m, '-o', out('imported.onnx')]]);
      inputs.push(m, peft);
      break;
    }
    case 'adapted':
    case 'adapted-ext':
    case 'model-bytes': {
      const m = copyIn(kind === 'adapted-ext' ? b.adaptedExt : pick(rng, [b.adapted, b.plain]), dir);
      what = kind === 'model-bytes' ? editBytes(m, rng) : editModel(m, rng);
      argv = pick(rng, [
        ['merge', m, '-o', out('merged.onnx')],
        ['merge', m, '-o', out('merged.onnx'), '--engine', 'ort'],
        ['grad', m, '--data', data, '--task', b.task, '-o', out('grads.safetensors')],
        ['train', m, '--data', data, '--task', b.task, ...step, '-o', out('run')],
        ['export-peft', m, '-o', out('peft')],
        ['inspect', m],
        ['inject', m, '-o', out('again.onnx')],
      ]);
      inputs.push(m);
      break;
    }
    case 'checkpoint':
    case 'tweaker': {
      const file = copyIn(kind === 'checkpoint' && b.checkpoint ? b.checkpoint : b.tweaker, dir);
      what = editBytes(file, rng, rng.next() < 0.6);
      const adapted = copyIn(b.adapted, dir);
      argv = pick(rng, [
        ['merge', adapted, '-o', out('merged.onnx'), '--checkpoint', file],
        ['inject', copyIn(b.plain, dir), '-o', out('adapted.onnx'), '--init', file, '--rank', '4'],
        ['export-peft', file, '-o', out('peft')],
        ['export-peft', file, '--model', adapted, '-o', out('peft')],
      ]);
      inputs.push(file, adapted);
      break;
    }
    case 'peft': {
      const peft = copyIn(b.peft, dir);
      const m = copyIn(b.plain, dir);
      if (rng.next() < 0.5) {
        const path = join(peft, 'adapter_config.json');
        const entry = { value: readFileSync(path, 'utf8') };
        what = `adapter_config.json: ${mutateJson(entry, rng)}`;
        writeFileSync(path, entry.value);
      } else what = `adapter_model.safetensors: ${editBytes(join(peft, 'adapter_model.safetensors'), rng, rng.next() < 0.6)}`;
      argv = ['import-peft', peft, m, '-o', out('imported.onnx')];
      inputs.push(join(peft, 'adapter_config.json'), join(peft, 'adapter_model.safetensors'), m);
      break;
    }
    case 'data': {
      what = `${basename(data)}: ${editBytes(data, rng, data.endsWith('.safetensors') && rng.next() < 0.6)}`;
      const m = copyIn(b.adapted, dir);
      argv = pick(rng, [
        ['grad', m, '--data', data, '--task', b.task, '-o', out('grads.safetensors')],
        ['train', m, '--data', data, '--task', b.task, ...step, '-o', out('run')],
      ]);
      inputs.push(m);
      break;
    }
    case 'train-options': {
      // Intact inputs, hostile settings: the training paths run to the end here.
      const m = copyIn(pick(rng, [b.adapted, b.adaptedExt]), dir);
      const opt = pick(rng, [
        ['--lr', pick(rng, ['1e30', '0', '-1', 'NaN', '0.01'])],
        ['--batch-size', pick(rng, ['0', '1', '3', '1e9', '-2'])],
        ['--grad-clip', pick(rng, ['0', '1e-30', '1'])],
        ['--warmup', pick(rng, ['5', '-1', '1e12'])],
        ['--max-length', pick(rng, ['1', '2', '0', '100000'])],
        ['--save-every', pick(rng, ['0', '1', 'x'])],
        ['--epochs', pick(rng, ['1', '0'])],
      ]);
      what = `option ${opt.join(' ')}`;
      const steps = opt[0] === '--epochs' ? ['--ep', 'cpu', '--threads', '1'] : step;
      argv = pick(rng, [
        ['train', m, '--data', data, '--task', b.task, ...steps, ...opt, '-o', out('run')],
        ['grad', m, '--data', data, '--task', b.task, '-o', out('grads.safetensors'), ...(opt[0] === '--batch-size' ? opt : [])],
      ]);
      inputs.push(m);
      break;
    }
    default: {
      const m = copyIn(b.plain, dir);
      const r = rng.next();
      const opt = r < 0.3 ? ['--rank', String(pick(rng, WEIRD_INTS))] : r < 0.5 ? ['--depth', String(pick(rng, WEIRD_INTS))] : r < 0.8 ? ['--targets', pick(rng, HOSTILE_TARGETS)] : ['--scaling', pick(rng, ['NaN', '1e308', '-0', 'x'])];
      what = `option ${opt.join(' ').slice(0, 60)}`;
      argv = pick(rng, [['inspect', m, ...opt], ['inject', m, '-o', out('adapted.onnx'), ...opt]]);
      inputs.push(m);
    }
  }
  const rel = (a: string) => (a.startsWith(dir) ? a.slice(dir.length + 1) || '.' : a);
  return { description: `[${b.name}/${kind}] ${what} :: ${argv.map(rel).join(' ')}`, argv, inputs, dir };
}

/** A hash of a file, or of every file in a folder (names and contents). */
function fileHash(path: string): string {
  if (!existsSync(path)) return 'absent';
  const h = createHash('sha256');
  if (statSync(path).isDirectory()) for (const f of filesUnder(path).sort()) h.update(f).update(readFileSync(f));
  else h.update(readFileSync(path));
  return h.digest('hex');
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

export interface FuzzResult {
  id: number;
  description: string;
  code: number;
  ms: number;
  /** What went wrong (undefined: the case ended as it should). */
  problem?: string;
  stderr: string;
}

/** A stack trace in what the CLI printed: a line of `at …` frames, or an error printed raw. */
const STACK = /^\s+at .+(\(|:\d+:\d+)/m;

/** Runs one case and checks its outcome (see the module comment). */
export async function runCase(c: FuzzCase, id: number): Promise<FuzzResult> {
  const before = new Map(c.inputs.map((p) => [p, fileHash(p)]));
  const t0 = performance.now();
  let r: { code: number; stdout: string; stderr: string };
  try {
    r = await runMain(c.argv);
  } catch (err) {
    return { id, description: c.description, code: -1, ms: performance.now() - t0, problem: `main() threw: ${(err as Error)?.stack ?? String(err)}`, stderr: '' };
  }
  const ms = performance.now() - t0;
  const result: FuzzResult = { id, description: c.description, code: r.code, ms, stderr: r.stderr };
  const problems: string[] = [];
  if (![0, 1, 2].includes(r.code)) problems.push(`exit code ${r.code}`);
  if (STACK.test(r.stderr) || STACK.test(r.stdout)) problems.push('stack trace printed');
  if (r.code === 1 && !/^error: /m.test(r.stderr)) problems.push('exit 1 without an error line');
  for (const [p, h] of before) if (fileHash(p) !== h) problems.push(`input ${basename(p)} changed`);
  // A refusal writes nothing (a run that saved its last good state says so, and may keep it).
  const written = existsSync(join(c.dir, 'out')) ? readdirSync(join(c.dir, 'out')) : [];
  if (r.code !== 0 && written.length && !/the last good state.* is saved in/.test(r.stderr)) problems.push(`exit ${r.code} but wrote ${written.join(', ')}`);
  const strays = readdirSync(c.dir).filter((n) => n.endsWith('.tmp'));
  if (strays.length) problems.push(`left temp files ${strays.join(', ')}`);
  if (r.code === 0) {
    for (const f of filesUnder(join(c.dir, 'out'))) {
      if (f.endsWith('.onnx')) {
        try {
          const s = await nodeRuntime.createSession(f, { ep: 'cpu' });
          await s.release();
        } catch (err) {
          problems.push(`output ${basename(f)} does not load in ONNX Runtime: ${(err as Error).message.split('\n')[0]}`);
        }
      } else if (f.endsWith('.safetensors')) {
        try {
          parseSafetensors(readFileSync(f), f);
        } catch (err) {
          problems.push(`output ${basename(f)} is not valid safetensors: ${(err as Error).message}`);
        }
      }
    }
  }
  if (problems.length) result.problem = problems.join('; ');
  return result;
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  byCode: Record<string, number>;
  byCommand: Record<string, Record<string, number>>;
  problems: FuzzResult[];
  slowest: FuzzResult[];
  seconds: number;
}

/**
 * Runs `cases` cases from `seed` (case ids `first`, `first + 1`, …) in a temp folder under
 * `root`; each case folder is removed once checked, unless `keepFailed` and it failed.
 */
export async function runFuzz(opts: { seed: number; cases: number; first?: number; root: string; corpus?: Corpus; keepFailed?: boolean; onResult?: (r: FuzzResult) => void }): Promise<FuzzSummary> {
  const t0 = performance.now();
  const corpus = opts.corpus ?? (await prepareCorpus(join(opts.root, 'corpus')));
  const results: FuzzResult[] = [];
  const first = opts.first ?? 0;
  for (let id = first; id < first + opts.cases; id++) {
    const c = makeCase(corpus, opts.seed, id, opts.root);
    const r = await runCase(c, id);
    results.push(r);
    opts.onResult?.(r);
    if (!(r.problem && opts.keepFailed)) rmSync(c.dir, { recursive: true, force: true });
  }
  const byCode: Record<string, number> = {};
  const byCommand: Record<string, Record<string, number>> = {};
  for (const r of results) {
    const cmd = /:: (\S+)/.exec(r.description)?.[1] ?? '?';
    const outcome = r.problem ? 'PROBLEM' : r.code === 0 ? 'ok' : r.code === 1 ? 'refused' : r.code === 2 ? 'usage' : String(r.code);
    byCode[outcome] = (byCode[outcome] ?? 0) + 1;
    byCommand[cmd] ??= {};
    byCommand[cmd]![outcome] = (byCommand[cmd]![outcome] ?? 0) + 1;
  }
  return {
    seed: opts.seed,
    cases: results.length,
    byCode,
    byCommand,
    problems: results.filter((r) => r.problem),
    slowest: [...results].sort((a, b) => b.ms - a.ms).slice(0, 5),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The summary as text (one line per command, then every problem with how to repeat it). */
export function formatSummary(s: FuzzSummary): string {
  const lines = [`fuzz: ${s.cases} cases from seed ${s.seed} in ${s.seconds.toFixed(1)} s: ${Object.entries(s.byCode).map(([k, v]) => `${v} ${k}`).join(', ')}`];
  for (const [cmd, counts] of Object.entries(s.byCommand).sort()) lines.push(`  ${cmd.padEnd(12)} ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}`);
  lines.push(`  slowest: ${s.slowest.map((r) => `#${r.id} ${(r.ms / 1000).toFixed(2)} s`).join(', ')}`);
  for (const p of s.problems) lines.push(`PROBLEM #${p.id} (repeat: npm run fuzz -- --seed ${s.seed} --first ${p.id} --cases 1): ${p.problem}\n  ${p.description}\n  ${p.stderr.trim().split('\n').slice(0, 8).join('\n  ')}`);
  return lines.join('\n');
}
