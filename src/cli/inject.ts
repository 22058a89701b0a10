// quail inject: qmail-inject. Reads a message on stdin, rewrites its header, queues it (exit 0 / 100 / 111).
import type { Command } from 'commander';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { parseInjectArgv, runInject, type InjectArgs } from '../inject/index.js';
import { openQueue } from '../queue/index.js';
import { qmailQueueTarget } from '../filter/index.js';
import { resolveRoot } from './common.js';

const DESCRIPTION = `read a message on stdin and queue it, like qmail-inject:
  -f SENDER   envelope sender (default: $QMAILUSER or $USER @ $QMAILHOST or defaulthost)
  -a          recipients from the arguments only     -h  from To/Cc/Bcc only
  -H          from both                             (default: arguments if any, else To/Cc/Bcc)
  -n          print the rewritten message instead of queueing it
  -s          ignore Return-Path in the message
environment: QMAILDEFAULTHOST QMAILDEFAULTDOMAIN QMAILPLUSDOMAIN QMAILIDHOST QMAILUSER QMAILHOST
QMAILNAME QMAILINJECT (letters c s f i r m); exit 0 queued, 100 permanent error, 111 temporary error`;

/** Runs one injection the way both `quail inject` and `sendmail` do, setting the process exit code. */
export async function injectFromStdin(
  name: string,
  root: string,
  args: InjectArgs,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const { exit } = await runInject({
    name,
    args,
    control: new Control(root),
    env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: (t) => process.stderr.write(t),
    // QMAILQUEUE, as qmail-inject: the program queues (typically through `quail queue-inject`)
    openTarget: async () => {
      const qq = env['QMAILQUEUE'];
      return qq !== undefined && qq !== ''
        ? qmailQueueTarget(qq, { QUAIL_ROOT: root, ...env })
        : openQueue(root, { create: false });
    },
  });
  return exit;
}

export function register(program: Command): void {
  program
    .command('inject')
    .description(DESCRIPTION)
    .usage('[-f SENDER] [-a|-h|-H] [-n] [-s] [RECIPIENT...] [--root DIR]')
    .argument('[args...]', 'qmail-inject options and recipients')
    .option('--root <dir>', 'mail root (default: $QUAIL_ROOT, else ./var/quail)')
    .helpOption('--help') // -h is qmail-inject's "recipients from the header"
    .allowUnknownOption()
    .action(async (argv: string[], opts: { root?: string }) => {
      let args: InjectArgs;
      try {
        args = parseInjectArgv(argv);
      } catch (err) {
        process.stderr.write(`quail inject: fatal: ${errText(err)}\n`);
        process.exitCode = 100;
        return;
      }
      process.exitCode = await injectFromStdin('quail inject', resolveRoot(opts.root), args, process.env);
    });
}
