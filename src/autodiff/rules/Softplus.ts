/** Softplus: Y = ln(1 + eˣ);  dX = dY · σ(X). */
import { elementwiseRule } from './shared/helpers.ts';

export const softplusGrad = elementwiseRule('Softplus', (ctx, x) => ctx.b.op('Sigmoid', [x]));

