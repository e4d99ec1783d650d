/**
 * The page side of the harness: exposes a bundled module's exports as `globalThis.__call(name,
 * args)`, arguments and results crossing as `pack`ed base64 (typed arrays exact).
 */
import { fromBase64, pack, toBase64, unpack } from './pack.ts';

type PageExports = Record<string, unknown>;

/** Installs `__call` for the module's exported functions and flags the page ready. */
export function exposeModule(exports: PageExports): void {
  const g = globalThis as unknown as { __call: (name: string, args: string) => Promise<string>; __ready: boolean };
  g.__call = async (name, args) => {
    const fn = exports[name];
    if (typeof fn !== 'function') throw new Error(`the page module has no exported function '${name}' (exports: ${Object.keys(exports).join(', ')})`);
    const result: unknown = await (fn as (a: unknown) => unknown)(unpack(fromBase64(args)));
    return toBase64(pack(result ?? null));
  };
  g.__ready = true;
}
