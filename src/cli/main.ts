/**
 * `peanut-onnx` command line: argv -> command. Each command module declares its options and
 * lazily imports the library code it calls. A PeanutError prints one line and exits 1; bad usage
 * exits 2; an interrupted run exits 130 (SIGINT) or 143 (SIGTERM); anything else is a bug and
 * prints in full. (The library turns the file-system failures it can foresee into PeanutErrors;
 * any other one, e.g. a disk that fills up mid-write, is still a file problem, not a bug, and is
 * printed as one line too.)
 */
import { Command, CommanderError } from 'commander';
import { PeanutError, VERSION } from '../index.ts';
import { ExitStatus, UsageError } from './errors.ts';
import { COMMANDS } from './commands/index.ts';

export function buildProgram(): Command {
  const program = new Command('peanut-onnx')
    .description('Fine-tune ONNX models with PEANuT weight-aware neural tweakers: inject, train, merge.')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const define of COMMANDS) {
    const cmd = define();
    cmd.exitOverride();
    program.addCommand(cmd);
  }
  return program;
}

/** One line for a Node file-system error (it has an errno code, a system call and a path), else undefined. */
function fileSystemError(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e.code !== 'string' || !/^E[A-Z]+$/.test(e.code) || typeof e.syscall !== 'string') return undefined;
  return `${e.syscall} ${e.path ?? ''} failed: ${e.code} (${e.message.split('\n')[0]})`;
}

/** Runs the CLI and returns the exit code (never calls process.exit itself). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version "errors" are successful exits
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ExitStatus) {
      process.stderr.write(`${err.message}\n`);
      return err.status;
    }
    if (err instanceof PeanutError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    const fsError = fileSystemError(err);
    if (fsError) {
      process.stderr.write(`error: ${fsError}\n`);
      return 1;
    }
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
