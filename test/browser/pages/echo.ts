/** Page module for the harness's own test: returns what it gets, and what the page can do. */

/** Returns its argument (typed arrays included) unchanged. */
export function echo(x: unknown): unknown {
  return x;
}

/** Whether the page is cross-origin isolated (COOP/COEP honoured), so SharedArrayBuffer exists. */
export function isolation(): { crossOriginIsolated: boolean; sharedArrayBuffer: boolean; secureContext: boolean } {
  return { crossOriginIsolated: self.crossOriginIsolated, sharedArrayBuffer: typeof SharedArrayBuffer === 'function', secureContext: self.isSecureContext };
}

/** Throws, so the harness's error path can be checked. */
export function fail(a: { message: string }): never {
  throw new Error(a.message);
}
