/** Exp: Y = eˣ;  dX = dY · Y. */
import { elementwiseRule } from './shared/helpers.ts';

export const expGrad = elementwiseRule('Exp', (ctx) => ctx.O(0));

