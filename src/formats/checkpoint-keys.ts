/**
 * Names of the AdamW moment tensors in training checkpoints and train graphs: `adam.m.<key>` and
 * `adam.v.<key>` beside each parameter `<key>`. Checkpoint readers (resume, merge, PEFT export)
 * tell parameters from moments by these names.
 */

/** The prefix of every moment tensor's name (`adam.m.<key>`, `adam.v.<key>`). */
const MOMENT_PREFIX = 'adam.';

/** Checkpoint/graph name of a moment tensor, as `merge --checkpoint` and resume expect it. */
export const momentName = (which: 'm' | 'v', param: string): string => `${MOMENT_PREFIX}${which}.${param}`;

/** The moment and parameter a checkpoint key names, or undefined for a parameter's own key. */
export function parseMomentName(key: string): { which: 'm' | 'v'; param: string } | undefined {
  if (!key.startsWith(MOMENT_PREFIX)) return undefined;
  const which = key.charAt(MOMENT_PREFIX.length);
  if ((which !== 'm' && which !== 'v') || key.charAt(MOMENT_PREFIX.length + 1) !== '.') return undefined;
  return { which, param: key.slice(MOMENT_PREFIX.length + 2) };
}
