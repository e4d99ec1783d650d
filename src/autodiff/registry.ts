/**
 * The gradient registry: one explicit table, built without side effects from the rule list in
 * `rules/index.ts` and the `NO_GRADIENT` list below. A duplicate registration throws, so a rule
 * can never be overridden silently. An op that is neither registered nor listed as
 * no-gradient fails loudly when it sits on a gradient path.
 */
import type { GradRule, NoGradient } from './rule.ts';
import { RULES } from './rules/index.ts';

/** Ops whose outputs never carry a gradient: shapes, sizes, comparisons, logic, index producers. */
export const NO_GRADIENT: readonly NoGradient[] = [
  'Shape',
  'Size',
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
  'Range',
  'ConstantOfShape',
  'Constant',
  'NonZero',
  'ArgMax',
  'ArgMin',
  'OneHot',
  'EyeLike',
  'RandomNormal',
  'RandomNormalLike',
  'RandomUniform',
  'RandomUniformLike',
  'Multinomial',
  'Bernoulli',
  'BitShift',
  'BitwiseAnd',
  'BitwiseOr',
  'BitwiseXor',
  'BitwiseNot',
  'Sign',
  'Floor',
  'Ceil',
  'Round',
].map((opType) => ({ opType, noGradient: true as const }));

const key = (domain: string | undefined, opType: string) => `${domain === 'ai.onnx' ? '' : (domain ?? '')}::${opType}`;

export interface GradRegistry {
  /** The rule for an op, if one is registered. */
  rule(domain: string, opType: string): GradRule | undefined;
  /** Whether the op is registered as carrying no gradient. */
  isNoGradient(domain: string, opType: string): boolean;
  /** Every registered op type (rules and no-gradient), `domain::op` for non-default domains. */
  opTypes(): string[];
}

/**
 * Builds a registry from rule configs and no-gradient entries.
 *
 * @throws Error when an op is registered twice (as a rule or a no-gradient op).
 */
export function createRegistry(rules: readonly GradRule[], noGradient: readonly NoGradient[] = NO_GRADIENT): GradRegistry {
  const ruleMap = new Map<string, GradRule>();
  const noGrad = new Set<string>();
  for (const r of rules) {
    const k = key(r.domain, r.opType);
    if (ruleMap.has(k) || noGrad.has(k)) throw new Error(`gradient rule for '${r.opType}'${r.domain ? ` (domain '${r.domain}')` : ''} is registered twice`);
    ruleMap.set(k, r);
  }
  for (const n of noGradient) {
    const k = key(n.domain, n.opType);
    if (ruleMap.has(k) || noGrad.has(k)) throw new Error(`op '${n.opType}' is registered twice (no-gradient list)`);
    noGrad.add(k);
  }
  return {
    rule: (domain, opType) => ruleMap.get(key(domain, opType)),
    isNoGradient: (domain, opType) => noGrad.has(key(domain, opType)),
    opTypes: () => [...ruleMap.keys(), ...noGrad].map((k) => (k.startsWith('::') ? k.slice(2) : k)).sort(),
  };
}

let defaultReg: GradRegistry | undefined;

/** The registry of every rule in `rules/index.ts` plus `NO_GRADIENT` (built on first use). */
export function defaultRegistry(): GradRegistry {
  return (defaultReg ??= createRegistry(RULES));
}
