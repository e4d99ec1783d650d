/** Min: as Max (see Max.ts): the gradient goes to the input(s) equal to the result, ties split. */
import type { GradRule } from '../rule.ts';
import { extremumGrad } from './Max.ts';

export const minGrad: GradRule = { opType: 'Min', grad: extremumGrad };
