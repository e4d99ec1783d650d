/** Sin: dX = dY · cos(X). */
import { elementwiseRule } from './shared/helpers.ts';

export const sinGrad = elementwiseRule('Sin', (ctx, x) => ctx.b.op('Cos', [x]));

