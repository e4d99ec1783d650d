/**
 * The option parsers and shared options of every command. A value that does not parse is a
 * usage error (exit 2) naming the flag; numbers are parsed as numbers here, once, so the library
 * never sees a string.
 */
import { Option } from 'commander';
import { CHOICES } from '../index.ts';
import { UsageError } from './errors.ts';

/** An integer >= `min` (and <= `max`); `name` is how messages call it (`--steps`, `rank`). */
export function intOption(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got '${value}'`);
    if (n > max) throw new UsageError(`${name} must be an integer <= ${max}, got '${value}'`);
    return n;
  };
}

/** A finite number >= `min`. */
export function floatOption(name: string, min = -Infinity) {
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`${name} must be a number >= ${min}, got '${value}'`);
    return n;
  };
}

/** One of `choices`. */
export function choiceOption<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new UsageError(`${name} must be one of ${choices.join(', ')}; got '${value}'`);
    return value as T;
  };
}

/** `-o, --output <what>`: where the command writes (a file or a directory). */
export function outputOption(what: string, description: string, required = true): Option {
  const o = new Option(`-o, --output <${what}>`, description);
  return required ? o.makeOptionMandatory() : o;
}

/** `--task <task>`, listing the tasks. */
export function taskOption(description: string, required: boolean): Option {
  const o = new Option('--task <task>', `${description} (${CHOICES.tasks.join(', ')})`).argParser(choiceOption('--task', CHOICES.tasks));
  return required ? o.makeOptionMandatory() : o;
}

/** `--ep <ep>`: the execution provider. */
export function epOption(description: string, fallback: string): Option {
  return new Option('--ep <ep>', `${description} (${CHOICES.executionProviders.join(', ')}; default ${fallback})`).argParser(choiceOption('--ep', CHOICES.executionProviders));
}

/** `--threads <n>`. */
export function threadsOption(): Option {
  return new Option('--threads <n>', 'ONNX Runtime intra-op threads (default: one per core)').argParser(intOption('--threads', 1));
}

/** `--json`: the command's summary as JSON on stdout. */
export function jsonOption(): Option {
  return new Option('--json', 'print the result as JSON on stdout');
}

/** The adapter method options shared by inspect, inject and demo (PEFT's defaults apply when absent). */
export function methodOptions(): Option[] {
  const d = CHOICES.defaults;
  return [
    new Option('--method <name>', `adapter method: ${CHOICES.methods.join(' or ')} (default peanut)`).argParser(choiceOption('--method', CHOICES.methods)),
    new Option('--rank <r>', `rank r (default ${d.peanut.r} for peanut, ${d.lora.r} for lora, as in PEFT)`).argParser(intOption('rank', 1, CHOICES.limits.rank)),
    new Option('--depth <n>', `PEANuT encoder/decoder pairs (default ${d.peanut.depth})`).argParser(intOption('depth', 0, CHOICES.limits.depth)),
    new Option('--act <name>', `PEANuT activation: ${CHOICES.activations.join(', ')} (default ${d.peanut.act})`),
    new Option('--scaling <s>', `PEANuT scaling of ΔW (default ${d.peanut.scaling})`).argParser(floatOption('scaling')),
    new Option('--alpha <a>', `LoRA alpha, ΔW scaled by alpha/r (default ${d.lora.alpha})`).argParser(floatOption('alpha')),
  ];
}

/** Rounds for display: 4 significant digits, no exponent between 1e-3 and 1e5. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e5 ? String(Number(x.toPrecision(4))) : x.toExponential(3);
}

/** An integer with thousands separators. */
export const int = (n: number): string => n.toLocaleString('en-US');

/**
 * PEFT's `print_trainable_parameters` line: trainable parameters against all parameters of the
 * adapted model (base + adapter).
 */
export function trainableLine(trainable: number, base: number): string {
  const all = base + trainable;
  return `trainable params: ${int(trainable)} || all params: ${int(all)} || trainable%: ${((100 * trainable) / all).toFixed(4)}`;
}
