/**
 * Unsqueeze: dX = Reshape(dY, Shape(X)) (`reshapeBack`, see Reshape.ts), whatever the axes
 * (attribute before opset 13, input 1 from 13, a stop-gradient edge).
 * The shape is a constant when probing found X fully static, else Shape(X) at run time.
 */
import type { GradRule } from '../rule.ts';
import { reshapeBack } from './Reshape.ts';

export const unsqueezeGrad: GradRule = { opType: 'Unsqueeze', differentiableInputs: [0], grad: reshapeBack };
