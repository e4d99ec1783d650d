/**
 * Access to the PyTorch oracle fixtures in test/fixtures/ (see its README). Fixture tensors are
 * keyed by ONNX node name (`<node>::A`, `::enc0`, …); the project uses PEFT keys
 * (`<module>.peanut_A.weight`, …). This helper maps between the two.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/node/safetensors-files.ts';
import { type SafeTensor } from '../../src/formats/safetensors.ts';

export const FIXTURES_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures');
export const FIXTURE_NAMES = ['bert_tiny_opset14', 'gpt2_tiny', 'gpt2_tiny_matmul'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

export interface FixtureTarget {
  node: string;
  op_type: string;
  weight_initializer: string;
  weight_shape: [number, number];
  torch_module: string;
}

export interface Fixture {
  name: FixtureName;
  dir: string;
  modelPath: string;
  config: {
    tweaker: {
      targets: FixtureTarget[];
      peft_equivalent_config: { r: number; depth: number; act_fn: string; scaling: number; target_modules: string[] };
    };
    task: { type: string };
    [k: string]: unknown;
  };
  /** `<node>::A` -> `<module>.peanut_A.weight` (and enc/dec/B likewise). */
  toPeftKey(fixtureKey: string): string;
  /** A fixture safetensors file with its tweaker keys renamed to PEFT keys. */
  peftTensors(file: 'init' | 'tweaker' | 'trajectory_final'): Map<string, SafeTensor>;
  /** batch.safetensors (input tensors + labels). */
  batch(): Map<string, SafeTensor>;
  /** expected.safetensors, keys as in the fixture. */
  expected(): Map<string, SafeTensor>;
  expectedJson: Record<string, unknown>;
  trajectory: { loss_before_step: number[]; loss_after_last_step: number; grad_global_l2_norm_before_step: number[] };
}

export function loadFixture(name: FixtureName): Fixture {
  const dir = join(FIXTURES_DIR, name);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Fixture['config'];
  const moduleOf = new Map(config.tweaker.targets.map((t) => [t.node, t.torch_module]));
  const toPeftKey = (key: string): string => {
    const [node, param] = key.split('::') as [string, string];
    const module = moduleOf.get(node);
    if (!module) throw new Error(`fixture key '${key}' names no target node`);
    const m = /^(A|B|enc(\d+)|dec(\d+))$/.exec(param);
    if (!m) throw new Error(`fixture key '${key}' has an unknown parameter '${param}'`);
    if (param === 'A' || param === 'B') return `${module}.peanut_${param}.weight`;
    return m[2] !== undefined ? `${module}.peanut_encoders.${m[2]}.weight` : `${module}.peanut_decoders.${m[3]}.weight`;
  };
  return {
    name,
    dir,
    modelPath: join(dir, 'model.onnx'),
    config,
    toPeftKey,
    peftTensors(file) {
      const { tensors } = readSafetensors(join(dir, `${file}.safetensors`));
      return new Map([...tensors].map(([k, v]) => [toPeftKey(k), v]));
    },
    batch: () => readSafetensors(join(dir, 'batch.safetensors')).tensors,
    expected: () => readSafetensors(join(dir, 'expected.safetensors')).tensors,
    expectedJson: JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, unknown>,
    trajectory: JSON.parse(readFileSync(join(dir, 'trajectory.json'), 'utf8')) as Fixture['trajectory'],
  };
}

/** max |got − want| / max |want| (the fixtures' relative error). */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length mismatch: ${got.length} vs ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return den === 0 ? num : num / den;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
