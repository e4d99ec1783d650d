/**
 * Einsum: the gradient of operand i is another Einsum, "out,others…->inᵢ", fed dY and the other
 * operands. Letters of inᵢ that appear nowhere else were summed away in the forward pass; the
 * gradient is constant along them, so they are left out of that Einsum and put back with
 * Unsqueeze + Expand(Shape(Xᵢ)). "..." is rewritten to fresh letters when every operand's
 * ellipsis covers the same static dims (no size-1 broadcasting inside the ellipsis).
 * Not supported: an operand with a repeated letter (a diagonal) that needs a gradient.
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrString } from '../../onnx/attributes.ts';
import { unsqueeze } from '../../onnx/ops.ts';
import { shapeOf, unsupported } from './shared/helpers.ts';

interface Parsed {
  inputs: string[];
  output: string;
}

function parse(ctx: GradContext): Parsed {
  const eq = (attrString(ctx.node, 'equation') ?? '').replace(/\s+/g, '');
  const [lhs, rhsRaw] = eq.split('->') as [string, string | undefined];
  let inputs = lhs.split(',');
  if (inputs.length !== ctx.inputCount) unsupported(ctx, `equation '${eq}' names ${inputs.length} operands, the node has ${ctx.inputCount}`);
  let rhs = rhsRaw;
  const fresh = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('').filter((c) => !eq.includes(c));
  let ell = '';
  if (eq.includes('...')) {
    const counts = inputs.map((t, i) => (t.includes('...') ? ctx.rank(ctx.I(i)) - t.replace('...', '').length : -1));
    const used = counts.filter((c) => c >= 0);
    const n = used[0] ?? 0;
    if (used.some((c) => c !== n) || n > fresh.length) unsupported(ctx, `ellipsis covering different ranks in '${eq}'`);
    const dimsOfEll = inputs.flatMap((t, i) => (t.includes('...') ? [ctx.shape(ctx.I(i)).slice(t.indexOf('...'), t.indexOf('...') + n)] : []));
    const first = dimsOfEll[0] ?? [];
    if (dimsOfEll.some((ds) => ds.some((d, j) => d === null || d !== first[j]))) unsupported(ctx, `ellipsis dims that broadcast or are dynamic in '${eq}'`);
    ell = fresh.slice(0, n).join('');
    inputs = inputs.map((t) => t.replace('...', ell));
    if (rhs !== undefined) rhs = rhs.replace('...', ell);
  }
  if (rhs === undefined) {
    // Implicit output: letters seen exactly once, alphabetical (ellipsis letters first).
    const all = inputs.join('');
    rhs = ell + [...new Set(all)].filter((c) => !ell.includes(c) && all.split(c).length === 2).sort().join('');
  }
  return { inputs, output: rhs };
}

export const einsumGrad: GradRule = {
  opType: 'Einsum',
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY) return [];
    const b = ctx.b;
    const { inputs, output } = parse(ctx);
    return inputs.map((term, i) => {
      if (!ctx.needsGrad(i)) return undefined;
      if (new Set(term).size !== term.length) unsupported(ctx, `operand ${i} ('${term}') has a repeated index (a diagonal)`);
      const others = inputs.filter((_, j) => j !== i);
      const elsewhere = new Set(output + others.join(''));
      const target = [...term].filter((c) => elsewhere.has(c)).join('');
      const operands = [dY, ...ctx.node.input.filter((_, j) => j !== i)];
      const eq = `${[output, ...others].join(',')}->${target}`;
      let g = b.op('Einsum', operands, { equation: eq });
      if (target.length !== term.length) {
        const missing = [...term].flatMap((c, k) => (elsewhere.has(c) ? [] : [k]));
        g = b.op('Expand', [unsqueeze(ctx, g, missing), shapeOf(ctx, ctx.I(i))]);
      }
      return g;
    });
  },
};
