/**
 * Where ONNX Runtime placed each node, read from its verbose session log (the
 * `VerifyEachNodeIsAssignedToAnEp` lines a session created with log level `verbose` prints):
 * execution provider → op type → node count.
 */
export function nodePlacement(log: readonly string[]): Record<string, Record<string, number>> {
  const placement: Record<string, Record<string, number>> = {};
  let ep: string | undefined;
  for (const line of log) {
    if (!line.includes('VerifyEachNodeIsAssignedToAnEp')) continue;
    const header = /Node\(s\) placed on \[(\w+)\]/.exec(line);
    if (header) {
      ep = header[1]!;
      placement[ep] ??= {};
      continue;
    }
    const node = /\]\s{3}(\w+) \(/.exec(line);
    if (node && ep) placement[ep]![node[1]!] = (placement[ep]![node[1]!] ?? 0) + 1;
  }
  return placement;
}

/** Nodes per execution provider. */
export function nodeCounts(placement: Record<string, Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(placement).map(([ep, ops]) => [ep, Object.values(ops).reduce((a, b) => a + b, 0)]));
}
