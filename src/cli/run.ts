// quail's commands, loaded by main.ts once it has checked the limit on open files. One file per command under
// src/cli/, each exporting register(program).
import { Command, CommanderError } from 'commander';
import { errText, ignoreUserSignals } from '../core/index.js';
import { COMMANDS } from './commands.js';

// before anything else: SIGUSR1 would open Node's debugger (core/signals.ts); quail start logs them once it runs
ignoreUserSignals();

const program = new Command();
program
  .name('quail')
  .description('quail: a qmail-compatible virtual-domain mail server')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();
for (const register of COMMANDS) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; usage errors are permanent (100), as in qmail's tools.
    process.exitCode = err.exitCode === 0 ? 0 : 100;
  } else {
    process.stderr.write(`quail: fatal: ${errText(err)}\n`);
    process.exitCode = 111;
  }
}
