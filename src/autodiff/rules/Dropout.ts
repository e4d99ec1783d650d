/**
 * Dropout in inference mode (the only mode an exported eval model runs in): Y = X, so dX = dY.
 * Ratio and training_mode (inputs 1, 2) and the mask output carry no gradient. A node whose
 * training_mode is a constant true would randomize the forward pass, which we refuse.
 */
import type { GradRule } from '../rule.ts';
import { PeanutError } from '../../errors.ts';

export const dropoutGrad: GradRule = {
  opType: 'Dropout',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.GO(0);
    if (!dY || !ctx.needsGrad(0)) return [];
    if (ctx.inputCount > 2 && ctx.I(2)) {
      const mode = ctx.constInts(ctx.I(2));
      if (!mode || mode[0] !== 0) {
        throw new PeanutError('E_UNSUPPORTED_OP', `Dropout node '${ctx.node.name}' may run in training mode (training_mode is not a constant false); export the model in eval mode`);
      }
    }
    return [dY];
  },
};
