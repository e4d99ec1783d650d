/** The package version (kept equal to package.json's by a test), recorded in manifests. */
export const VERSION = '0.1.0';
