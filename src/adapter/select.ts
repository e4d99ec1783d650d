/**
 * Target selection: `--targets` (or the architecture's PEFT default) applied to the discovered
 * candidates, with an error that lists what could have matched.
 */
import { PeanutError } from '../errors.ts';
import { candidateList, defaultTargets, type DetectedArchitecture } from './architectures.ts';
import { describeTargets, moduleMatches, parseTargets, selectCandidates, type Candidate, type Discovery, type TargetSpec } from './targets.ts';

export interface Selection {
  selected: Candidate[];
  spec: TargetSpec;
  /** The targets value as text (`query,value`, a regex, `all-linear`). */
  targetModules: string;
  /** Set when the default targets were used. */
  detected?: DetectedArchitecture;
}

/**
 * Selects the layers to adapt.
 *
 * @param targets - PEFT target_modules (string or list); omitted: the architecture default
 * @throws PeanutError `E_NO_TARGETS` when nothing matches (the message lists the candidates
 *   and any skipped layer the value names, with its reason)
 */
export function selectTargets(discovery: Discovery, targets?: string | readonly string[]): Selection {
  const { candidates, skipped } = discovery;
  let spec: TargetSpec;
  let detected: DetectedArchitecture | undefined;
  if (targets === undefined || (typeof targets === 'string' && targets.trim() === '')) {
    const d = defaultTargets(candidates, discovery.structure ? discovery : undefined);
    detected = d.detected;
    spec = parseTargets(d.targets);
  } else {
    spec = parseTargets(targets);
  }
  const selected = selectCandidates(candidates, spec);
  if (selected.length === 0) {
    const list = candidateList(candidates, '(none: the model has no adaptable MatMul/Gemm layer)');
    const blocked = skipped.filter((s) => s.module && spec.kind !== 'all-linear' && moduleMatches(s.module, spec));
    const shown = blocked.slice(0, 3).map((s) => `${s.module} is skipped: ${s.reason}`);
    if (blocked.length > 3) shown.push(`${blocked.length - 3} more skipped`);
    if (spec.kind === 'all-linear' && candidates.length > 0) shown.push('every candidate is an output head, which all-linear leaves out; name the layers instead');
    const why = shown.length ? ` (${shown.join('; ')})` : '';
    throw new PeanutError('E_NO_TARGETS', `no layer matches --targets '${describeTargets(spec)}'${why}. Candidate modules: ${list}`);
  }
  return { selected, spec, targetModules: describeTargets(spec), ...(detected ? { detected } : {}) };
}
