/**
 * Trilu: Y keeps one triangle of X and zeroes the rest, so dX = Trilu(dY) with the same `upper`
 * attribute and the same k input (a stop-gradient edge).
 */
import type { GradRule } from '../rule.ts';
import { attrInt } from '../../onnx/attributes.ts';
import { hasInput } from './shared/helpers.ts';

export const triluGrad: GradRule = {
  opType: 'Trilu',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    const inputs = hasInput(ctx, 1) ? [dY, ctx.I(1)] : [dY];
    return [ctx.b.op('Trilu', inputs, { upper: attrInt(ctx.node, 'upper', 1) })];
  },
};
