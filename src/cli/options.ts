/** Option parsers shared by commands: each rejects a bad value with a UsageError naming the flag. */
import { UsageError } from '../errors.ts';

export function intOption(flag: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got '${value}'`);
    return n;
  };
}

export function floatOption(flag: string, min = -Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`${flag} must be a number >= ${min}, got '${value}'`);
    return n;
  };
}

export function choiceOption<T extends string>(flag: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new UsageError(`${flag} must be one of ${choices.join(', ')}; got '${value}'`);
    return value as T;
  };
}
