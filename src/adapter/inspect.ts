/**
 * The `inspect` report: every candidate layer with its module path, weight, shape, dtype and
 * the parameters an adapter would add; which layers the targets select; every skipped
 * MatMul/Gemm with its reason; and the adapter already present, if any.
 */
import { PeanutError } from '../errors.ts';
import { countParameters, type OnnxModel } from '../onnx/model.ts';
import { readAdapterMeta, type AdapterMeta } from './adapter-meta.ts';
import { resolveMethodConfig, type MethodConfig, type MethodOptions } from './config.ts';
import { methodFor } from './methods/index.ts';
import { paramCount } from './methods/method.ts';
import { selectTargets } from './select.ts';
import { discoverTargets, type Skipped } from './targets.ts';

export interface InspectOptions extends MethodOptions {
  /** Targets to preview; default: the architecture's PEFT default. */
  targets?: string | readonly string[];
}

export interface InspectLayer {
  module: string;
  node: string;
  op: string;
  weight: string;
  weightSource: 'initializer' | 'constant';
  /** `[in, out]`. */
  shape: [number, number];
  storedShape: [number, number];
  transB: boolean;
  /** Stored layout: `io` = `[in, out]`, `oi` = `[out, in]`. */
  layout: 'io' | 'oi';
  transposeNode?: string;
  dtype: string;
  /** Trainable parameters the adapter would add (PEANuT: 2·out·r + 2·depth·r²). */
  params: number;
  selected: boolean;
  isHead: boolean;
}

export interface InspectReport {
  model?: string;
  config: MethodConfig;
  architecture?: { name: string; modelType: string; defaultTargets: string[] };
  /** The targets value used for `selected` (or why nothing is selected). */
  targets?: string;
  selectionError?: string;
  candidates: InspectLayer[];
  skipped: Skipped[];
  selectedParams: number;
  /** Parameters of the model itself (its floating-point initializers). */
  parameters: number;
  /** Present when the model is already adapted. */
  adapter?: AdapterMeta;
}

/**
 * Builds the inspect report of a model.
 *
 * @throws PeanutError `E_BAD_CONFIG` for a bad rank/depth/activation or targets regex
 */
export function inspectModel(model: OnnxModel, options: InspectOptions = {}): InspectReport {
  const config = resolveMethodConfig(options);
  const method = methodFor(config);
  const discovery = discoverTargets(model);
  let selected = new Set<string>();
  let targets: string | undefined;
  let selectionError: string | undefined;
  let architecture: InspectReport['architecture'];
  try {
    const s = selectTargets(discovery, options.targets);
    selected = new Set(s.selected.map((c) => c.node + '\u0000' + c.module));
    targets = s.targetModules;
    if (s.detected) architecture = { name: s.detected.architecture.name, modelType: s.detected.modelType, defaultTargets: [...s.detected.architecture.targets] };
  } catch (err) {
    if (!(err instanceof PeanutError) || err.code !== 'E_NO_TARGETS') throw err;
    selectionError = err.message;
  }
  const candidates = discovery.candidates.map((c): InspectLayer => {
    const isSelected = selected.has(c.node + '\u0000' + c.module);
    return {
      module: c.module,
      node: c.node,
      op: c.op,
      weight: c.weight,
      weightSource: c.weightSource,
      shape: [c.in, c.out],
      storedShape: c.storedShape,
      transB: c.transB,
      layout: c.layout,
      ...(c.transposeNode ? { transposeNode: c.transposeNode } : {}),
      dtype: c.dtype,
      params: paramCount(method.paramSpecs(config, { in: c.in, out: c.out })),
      selected: isSelected,
      isHead: c.isHead,
    };
  });
  const adapter = readAdapterMeta(model);
  return {
    ...(model.path ? { model: model.path } : {}),
    config,
    ...(architecture ? { architecture } : {}),
    ...(targets !== undefined ? { targets } : {}),
    ...(selectionError ? { selectionError } : {}),
    candidates,
    skipped: discovery.skipped,
    selectedParams: candidates.filter((c) => c.selected).reduce((s, c) => s + c.params, 0),
    parameters: countParameters(model),
    ...(adapter ? { adapter } : {}),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function describeConfig(c: MethodConfig): string {
  return c.method === 'peanut' ? `peanut r=${c.r} depth=${c.depth} act=${c.act} scaling=${c.scaling}` : `lora r=${c.r} alpha=${c.alpha}`;
}

/** The report as human-readable text. */
export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [];
  if (r.model) lines.push(`model: ${r.model}`);
  if (r.adapter) {
    lines.push(`already adapted: ${describeConfig(r.adapter.config)}, ${r.adapter.targets.length} target(s): ${r.adapter.targets.map((t) => t.module).join(', ')}`);
  }
  if (r.architecture) lines.push(`architecture: ${r.architecture.modelType} (default targets: ${r.architecture.defaultTargets.join(', ')})`);
  if (r.targets !== undefined) lines.push(`targets: ${r.targets}`);
  if (r.selectionError) lines.push(`selection: ${r.selectionError}`);
  lines.push(`parameters per layer for: ${describeConfig(r.config)}`);
  lines.push('');
  lines.push(`${r.candidates.length} candidate layer(s):`);
  if (r.candidates.length) {
    const rows = [['sel', 'module', 'op', 'shape [in,out]', 'dtype', 'params', 'weight', 'node']];
    for (const c of r.candidates) {
      const op = `${c.op}${c.transB ? '(transB)' : ''}${c.transposeNode ? '(Transpose)' : ''}`;
      rows.push([c.selected ? '*' : c.isHead ? 'head' : '', c.module, op, `[${c.shape.join(', ')}]`, c.dtype, c.params.toLocaleString('en-US'), c.weightSource === 'constant' ? `${c.weight} (Constant)` : c.weight, c.node]);
    }
    lines.push(table(rows));
    lines.push(`selected: ${r.candidates.filter((c) => c.selected).length} layer(s), ${r.selectedParams.toLocaleString('en-US')} trainable parameters`);
  }
  if (r.skipped.length) {
    lines.push('');
    lines.push(`${r.skipped.length} MatMul/Gemm layer(s) skipped:`);
    for (const s of r.skipped) lines.push(`  ${s.node || '(unnamed)'} [${s.op}]: ${s.reason}`);
  }
  return lines.join('\n');
}
