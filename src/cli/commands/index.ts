/** Every subcommand, in the order `--help` lists them. Each entry returns a commander Command. */
import type { Command } from 'commander';
import { inspectCommand } from './inspect.ts';
import { injectCommand } from './inject.ts';
import { mergeCommand } from './merge.ts';
import { artifactsCommand } from './artifacts.ts';
import { trainCommand } from './train.ts';
import { gradCommand } from './grad.ts';
import { exportPeftCommand } from './export-peft.ts';
import { importPeftCommand } from './import-peft.ts';
import { demoCommand } from './demo.ts';
import { averageCommand } from './average.ts';

export const COMMANDS: Array<() => Command> = [inspectCommand, injectCommand, gradCommand, artifactsCommand, trainCommand, mergeCommand, exportPeftCommand, importPeftCommand, averageCommand, demoCommand];
