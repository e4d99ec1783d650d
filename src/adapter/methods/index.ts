/** The adapter methods by name. */
import type { MethodConfig, MethodName } from '../config.ts';
import type { AdapterMethod } from './method.ts';
import { loraMethod } from './lora.ts';
import { peanutMethod } from './peanut.ts';

const METHODS: ReadonlyMap<MethodName, AdapterMethod> = new Map<MethodName, AdapterMethod>([
  ['peanut', peanutMethod as unknown as AdapterMethod],
  ['lora', loraMethod as unknown as AdapterMethod],
]);

/** The implementation of a configured method. */
export function methodFor(config: MethodConfig): AdapterMethod {
  const m = METHODS.get(config.method);
  if (!m) throw new Error(`no adapter method '${config.method}'`);
  return m;
}

/** Every method's marker suffix (used to recognise adapted models without metadata). */
export function methodMarkers(): string[] {
  return [...METHODS.values()].map((m) => m.marker);
}
