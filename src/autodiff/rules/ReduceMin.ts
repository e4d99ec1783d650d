/** ReduceMin: as ReduceMax (see ReduceMax.ts): the gradient goes to the elements equal to the result, ties split. */
import type { GradRule } from '../rule.ts';
import { reduceExtremumGrad } from './ReduceMax.ts';

export const reduceMinGrad: GradRule = { opType: 'ReduceMin', differentiableInputs: [0], grad: reduceExtremumGrad };
