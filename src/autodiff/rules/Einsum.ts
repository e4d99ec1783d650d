/**
 * Einsum: the gradient of operand i is another Einsum, "out,others…->inᵢ", fed dY and the other
 * operands. Letters of inᵢ that appear nowhere else were summed away in the forward pass; the
 * gradient is constant along them, so they are left out of that Einsum and put back with
 * Unsqueeze + Expand(Shape(Xᵢ)). "..." is rewritten to fresh letters when every operand's
 * ellipsis covers the same static dims (no size-1 broadcasting inside the ellipsis).
 * An operand with a repeated letter reads a diagonal ("ii->i", the trace "ii->", "iij->j"): its
 * gradient is computed over its distinct letters, then put back on the diagonal by an Einsum with
 * one identity matrix (EyeLike) per repeat, e.g. for "iij": g[i, j] → "ij,ia->iaj".
 */
import type { GradContext, GradRule } from '../rule.ts';
import { attrString } from '../../onnx/attributes.ts';
import { unsqueeze, zerosOfShape } from '../../onnx/ops.ts';
import { dimOf, dimsOf, unsupported } from './shared/helpers.ts';

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
    const used = new Set((attrString(ctx.node, 'equation') ?? '') + inputs.join('') + output);
    const fresh = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'].filter((c) => !used.has(c));
    return inputs.map((term, i) => {
      if (!ctx.needsGrad(i)) return undefined;
      const x = ctx.I(i);
      // The operand's distinct letters, in first-occurrence order, and where each first occurs.
      const unique = [...new Set(term)].join('');
      const first = [...unique].map((c) => term.indexOf(c));
      const others = inputs.filter((_, j) => j !== i);
      const elsewhere = new Set(output + others.join(''));
      const target = [...unique].filter((c) => elsewhere.has(c)).join('');
      const operands = [dY, ...ctx.node.input.filter((_, j) => j !== i)];
      let g = b.op('Einsum', operands, { equation: `${[output, ...others].join(',')}->${target}` });
      if (target.length !== unique.length) {
        const missing = [...unique].flatMap((c, k) => (elsewhere.has(c) ? [] : [k]));
        g = b.op('Expand', [unsqueeze(ctx, g, missing), dimsOf(ctx, x, first)]);
      }
      if (unique.length === term.length) return g;
      // Repeated letters (a diagonal): put g on the diagonal, one identity matrix per repeat.
      let next = 0;
      const eyes: string[] = [];
      const eyeTerms: string[] = [];
      const primed = [...term].map((c, k) => {
        if (term.indexOf(c) === k) return c;
        const f = fresh[next++];
        if (!f) unsupported(ctx, `too many repeated letters in '${term}'`);
        const d = dimOf(ctx, x, k);
        eyes.push(b.op('EyeLike', [zerosOfShape(ctx, b.op('Concat', [d, d], { axis: 0 }), ctx.dtype(x), 2)]));
        eyeTerms.push(`${c}${f}`);
        return f;
      });
      return b.op('Einsum', [g, ...eyes], { equation: `${unique},${eyeTerms.join(',')}->${primed.join('')}` });
    });
  },
};
