/** Every subcommand, in the order `--help` lists them. Each entry returns a commander Command. */
import type { Command } from 'commander';

export const COMMANDS: Array<() => Command> = [];
