/**
 * Squeeze: dX = Reshape(dY, Shape(X)) (`reshapeBack`, see Reshape.ts), whatever the axes
 * (attribute before opset 13, input 1 from 13, a stop-gradient edge) and also when no axes are
 * given. The shape is a constant when probing found X fully static, else Shape(X) at run time.
 */
import type { GradRule } from '../rule.ts';
import { reshapeBack } from './Reshape.ts';

export const squeezeGrad: GradRule = { opType: 'Squeeze', differentiableInputs: [0], grad: reshapeBack };
