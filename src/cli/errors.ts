/** Bad command-line usage (unknown flag, missing argument, a malformed number): exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
