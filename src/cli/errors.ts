/** Bad command-line usage (unknown flag, missing argument, a malformed number): exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A command that ends with a status of its own (an interrupted run: 130 for SIGINT, 143 for
 * SIGTERM) after saying why in one line.
 */
export class ExitStatus extends Error {
  override name = 'ExitStatus';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
