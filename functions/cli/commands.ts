// The CLI's commands, in the order its help lists them; a command is added by putting it here.
import { backfillCommand } from './backfill.js';
import { collectCommand } from './collect.js';
import { consumeCommand } from './consume.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { exportCommand } from './export.js';
import { invokeCommand } from './invoke.js';
import type { CliCommand } from './io.js';
import { normalizeCommand } from './normalize.js';
import { replayCommand } from './replay.js';
import { reportCommand } from './report.js';
import { rulesCommand } from './rules.js';
import { syncCommand } from './sync.js';

export const COMMANDS: readonly CliCommand[] = [
  demoCommand,
  replayCommand,
  collectCommand,
  doctorCommand,
  normalizeCommand,
  rulesCommand,
  consumeCommand,
  backfillCommand,
  exportCommand,
  reportCommand,
  syncCommand,
  invokeCommand,
];
