// quail inject: qmail-inject. Reads a message on stdin, rewrites its header, queues it (exit 0 / 100 / 111).
import type { Command } from 'commander';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { parseInjectArgv, runInject, type InjectArgs } from '../inject/index.js';
import { openQueue, type NewMessage } from '../queue/index.js';
import { chooseQueue, rulesFrom } from '../queues/index.js';
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
  const control = new Control(root);
  const { exit } = await runInject({
    name,
    args,
    control,
    env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: (t) => process.stderr.write(t),
    // QMAILQUEUE, as qmail-inject: the program queues (typically through `quail queue-inject`, which joins the queue
    // the rules chose: the program gets it as QUAIL_QUEUE); else the matching queue rule's filter= the same way;
    // else the queue itself.
    openTarget: async () => {
      const qq = env['QMAILQUEUE'];
      if (qq !== undefined && qq !== '') return qmailQueueTarget(qq, { QUAIL_ROOT: root, ...env });
      const queue = await openQueue(root, { create: false });
      return {
        inject: (m: NewMessage) => {
          // the same snapshot as prepareMessage's choice (rulesFrom keeps one parse per snapshot): the same rule
          const filter = chooseQueue(rulesFrom(control), { sender: m.sender, recipients: m.recipients }).filter;
          return filter !== undefined
            ? qmailQueueTarget(filter, { QUAIL_ROOT: root, ...env }).inject(m)
            : queue.inject(m);
        },
      };
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
