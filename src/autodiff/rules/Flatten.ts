/**
 * Flatten: dX = Reshape(dY, Shape(X)) (`reshapeBack`, see Reshape.ts).
 * The shape is a constant when probing found X fully static, else Shape(X) at run time.
 */
import type { GradRule } from '../rule.ts';
import { reshapeBack } from './Reshape.ts';

export const flattenGrad: GradRule = { opType: 'Flatten', differentiableInputs: [0], grad: reshapeBack };
