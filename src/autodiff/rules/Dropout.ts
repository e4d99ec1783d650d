/**
 * Dropout. Ratio and training_mode (inputs 1, 2, from opset 12) and the mask output carry no
 * gradient.
 * - Inference (training_mode absent or a constant false, and every Dropout before opset 12,
 *   which ONNX Runtime runs as the identity): Y = X, so dX = dY.
 * - Training mode (training_mode a constant true, or a run-time value): Y = X·mask/(1 − ratio)
 *   with the random mask the node outputs, so
 *     dX = dY·mask·scale,  scale = 1/(1 − ratio) when training, 1 when not
 *   (a run-time training_mode picks the scale with Where; in inference mode the mask is all
 *   true). The mask output is reused: without it the random draw cannot be reproduced, and the
 *   node is refused.
 */
import type { GradRule } from '../rule.ts';
import { DataType as DT } from '../../onnx/dtype.ts';
import { scalarOf } from '../../onnx/ops.ts';
import { hasInput, unsupported } from './shared/helpers.ts';

export const dropoutGrad: GradRule = {
  opType: 'Dropout',
  differentiableInputs: [0],
  grad(ctx) {
    const dY = ctx.dY;
    if (ctx.opset < 12 || !hasInput(ctx, 2)) return [dY];
    const b = ctx.b;
    const mode = ctx.constInts(ctx.I(2));
    if (mode && mode[0] === 0) return [dY];
    const mask = ctx.node.output[1];
    if (!mask) unsupported(ctx, 'it may run in training mode (training_mode is not a constant false) and has no mask output to reproduce its random draw; export the model in eval mode, or with the mask output');
    const dt = ctx.dtype(ctx.I(0));
    const one = scalarOf(ctx, 1, dt);
    let keep: string;
    if (hasInput(ctx, 1)) {
      const r = ctx.constInts(ctx.I(1));
      keep = r && ctx.shape(ctx.I(1)).length === 0 ? scalarOf(ctx, 1 - r[0]!, dt) : b.op('Sub', [one, ctx.dtype(ctx.I(1)) === dt ? ctx.I(1) : b.op('Cast', [ctx.I(1)], { to: dt })]);
    } else {
      keep = scalarOf(ctx, 0.5, dt);
    }
    let scale = b.op('Reciprocal', [keep]);
    if (!mode) scale = b.op('Where', [b.op('Cast', [ctx.I(2)], { to: DT.BOOL }), scale, one]);
    return [b.op('Mul', [b.op('Mul', [dY, b.op('Cast', [mask], { to: dt })]), scale])];
  },
};
