/**
 * The `inspect` report: every candidate layer with its module path (and how it was derived),
 * weight, shape, dtype, the parameters an adapter would add and the graph outputs it reaches;
 * which layers the targets select; the detected architecture and what it was detected from; the
 * recognised structure; every skipped linear layer with its reason; and the adapter already
 * present, if any.
 */
import { PeanutError } from '../errors.ts';
import { countParameters, type OnnxModel } from '../onnx/model.ts';
import { readAdapterMeta, type AdapterMeta } from './adapter-meta.ts';
import { resolveMethodConfig, type MethodConfig, type MethodOptions } from './config.ts';
import { methodFor } from './methods/index.ts';
import { paramCount } from './methods/method.ts';
import { selectTargets } from './select.ts';
import { describeStructure } from './architectures.ts';
import type { StructureSummary } from './structure.ts';
import { discoverTargets, type ModuleNaming, type Skipped } from './targets.ts';

export interface InspectOptions extends MethodOptions {
  /** Targets to preview; default: the architecture's PEFT default. */
  targets?: string | readonly string[];
}

export interface InspectLayer {
  module: string;
  /** How `module` was derived: from the node name, the weight name, the graph structure (which pattern), or the sanitised node name. */
  naming: ModuleNaming;
  /** The layer's place in the recognised structure. */
  structure?: { layer: number; stack?: string; index: number; block: string; role: string };
  node: string;
  op: string;
  /** The op's domain when not ai.onnx. */
  domain?: string;
  weight: string;
  weightSource: 'initializer' | 'constant';
  /** `[in, out]`. */
  shape: [number, number];
  storedShape: [number, number];
  transB: boolean;
  /** Stored layout: `io` = `[in, out]`, `oi` = `[out, in]`. */
  layout: 'io' | 'oi';
  /** For a part of a packed weight: the output features `[start, end)` of the stored weight it owns. */
  columns?: [number, number];
  transposeNode?: string;
  dtype: string;
  /** Trainable parameters the adapter would add (PEANuT: 2·out·r + 2·depth·r²). */
  params: number;
  selected: boolean;
  isHead: boolean;
  /** Graph outputs the layer's output reaches. */
  reaches: string[];
}

export interface InspectReport {
  model?: string;
  config: MethodConfig;
  /** The detected architecture, what it was detected from, and its default targets. */
  architecture?: { name: string; modelType: string; named: boolean; source: 'module-names' | 'graph-structure'; evidence: string; defaultTargets: string[] };
  /** What the structural analysis recognised. */
  structure?: StructureSummary;
  /** The graph's outputs (what `reaches` refers to). */
  outputs: string[];
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
  } catch (err) {
    if (!(err instanceof PeanutError) || err.code !== 'E_NO_TARGETS') throw err;
    selectionError = err.message;
  }
  const d = discovery.architecture;
  if (d) architecture = { name: d.architecture.name, modelType: d.modelType, named: d.named, source: d.source, evidence: d.evidence, defaultTargets: [...d.architecture.targets] };
  const candidates = discovery.candidates.map((c): InspectLayer => {
    const isSelected = selected.has(c.node + '\u0000' + c.module);
    return {
      module: c.module,
      naming: c.naming,
      ...(c.structure ? { structure: { layer: c.structure.layer, ...(c.structure.stack ? { stack: c.structure.stack } : {}), index: c.structure.index, block: c.structure.block, role: c.structure.role } } : {}),
      node: c.node,
      op: c.op,
      ...(c.domain ? { domain: c.domain } : {}),
      weight: c.weight,
      weightSource: c.weightSource,
      shape: [c.in, c.out],
      storedShape: c.storedShape,
      transB: c.transB,
      layout: c.layout,
      ...(c.columns ? { columns: c.columns } : {}),
      ...(c.transposeNode ? { transposeNode: c.transposeNode } : {}),
      dtype: c.dtype,
      params: paramCount(method.paramSpecs(config, { in: c.in, out: c.out })),
      selected: isSelected,
      isHead: c.isHead,
      reaches: c.reaches,
    };
  });
  const adapter = readAdapterMeta(model);
  return {
    ...(model.path ? { model: model.path } : {}),
    config,
    ...(architecture ? { architecture } : {}),
    ...(discovery.structure ? { structure: discovery.structure } : {}),
    outputs: graphOutputs(model),
    ...(targets !== undefined ? { targets } : {}),
    ...(selectionError ? { selectionError } : {}),
    candidates,
    skipped: discovery.skipped,
    selectedParams: candidates.filter((c) => c.selected).reduce((s, c) => s + c.params, 0),
    parameters: countParameters(model),
    ...(adapter ? { adapter } : {}),
  };
}

function graphOutputs(model: OnnxModel): string[] {
  return (model.proto.graph?.output ?? []).map((o) => o.name);
}

/** Short form of how a module name was derived, for the table. */
function namingShort(c: InspectLayer): string {
  switch (c.naming.from) {
    case 'node-name':
      return 'node name';
    case 'weight-name':
      return 'weight name';
    case 'fallback':
      return 'node name (no module path)';
    case 'structure': {
      const s = c.structure!;
      return `structure: ${s.stack ? `${s.stack} ` : ''}layer ${s.index} ${s.block.replace('_', '-')} ${s.role}`;
    }
  }
}

/** The outputs a layer reaches, for the table: `all`, or the names. */
function reachShort(reaches: readonly string[], outputs: readonly string[]): string {
  if (reaches.length === outputs.length) return 'all';
  if (reaches.length === 0) return 'none';
  return reaches.length <= 3 ? reaches.join(', ') : `${reaches.slice(0, 2).join(', ')} +${reaches.length - 2} more`;
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
  if (r.architecture) {
    lines.push(`architecture: ${r.architecture.modelType} (default targets: ${r.architecture.defaultTargets.join(', ')})`);
    lines.push(`  detected from ${r.architecture.evidence}`);
  } else {
    lines.push(`architecture: not recognised (${r.structure && r.structure.layers > 0 ? `graph structure: ${describeStructure(r.structure)}; no known architecture has this layout` : 'no module paths in the names and no attention/MLP blocks in the graph'}); pass --targets`);
  }
  if (r.targets !== undefined) lines.push(`targets: ${r.targets}`);
  if (r.selectionError) lines.push(`selection: ${r.selectionError}`);
  lines.push(`parameters per layer for: ${describeConfig(r.config)}`);
  lines.push('');
  lines.push(`${r.candidates.length} candidate layer(s):`);
  if (r.candidates.length) {
    const many = r.outputs.length > 1;
    const rows = [['sel', 'module', 'op', 'shape [in,out]', 'dtype', 'params', 'weight', 'node', 'module name from', ...(many ? ['reaches'] : [])]];
    for (const c of r.candidates) {
      const op = `${c.op}${c.domain ? `(${c.domain})` : ''}${c.transB ? '(transB)' : ''}${c.transposeNode ? '(Transpose)' : ''}${c.columns ? `[:, ${c.columns[0]}:${c.columns[1]}]` : ''}`;
      rows.push([
        c.selected ? '*' : c.isHead ? 'head' : '',
        c.module,
        op,
        `[${c.shape.join(', ')}]`,
        c.dtype,
        c.params.toLocaleString('en-US'),
        c.weightSource === 'constant' ? `${c.weight} (Constant)` : c.weight,
        c.node,
        namingShort(c),
        ...(many ? [reachShort(c.reaches, r.outputs)] : []),
      ]);
    }
    lines.push(table(rows));
    const structural = r.candidates.filter((c) => c.naming.from === 'structure');
    if (structural.length) {
      const counts = new Map<string, number>();
      for (const c of structural) counts.set(c.naming.pattern!, (counts.get(c.naming.pattern!) ?? 0) + 1);
      const how = [...counts].map(([p, n]) => `${p} (${n})`).join(', ');
      lines.push(`${structural.length} module name(s) from the graph structure, in ${structural[0]!.naming.convention} names: ${how}; inspect --json has each layer's pattern`);
    }
    lines.push(`selected: ${r.candidates.filter((c) => c.selected).length} layer(s), ${r.selectedParams.toLocaleString('en-US')} trainable parameters`);
  }
  if (r.skipped.length) {
    lines.push('');
    const kind = r.skipped.every((x) => x.op === 'MatMul' || x.op === 'Gemm') ? 'MatMul/Gemm' : 'linear';
    lines.push(`${r.skipped.length} ${kind} layer(s) skipped:`);
    for (const s of r.skipped) lines.push(`  ${s.node || '(unnamed)'} [${s.op}]: ${s.reason}`);
  }
  return lines.join('\n');
}
