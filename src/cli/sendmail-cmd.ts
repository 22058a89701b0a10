// quail sendmail (and the `sendmail` binary): the sendmail interface programs expect, mapped onto inject like qmail's.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Command } from 'commander';
import { Control } from '../control/index.js';
import { errText, permError, QuailError } from '../core/index.js';
import { qmailQueueFilter } from '../filter/index.js';
import type { InjectArgs } from '../inject/index.js';
import { openQueue } from '../queue/index.js';
import { DEFAULT_LIMITS, NO_DIRECTORY, hostIps, runSession } from '../smtpd/index.js';
import { resolveRoot } from './common.js';
import { injectFromStdin } from './inject.js';
import { formatMessage, formatRecipient } from './queue.js';
import { LoginThrottle } from '../throttle/index.js';

export type SendmailMode = 'deliver' | 'list' | 'smtp' | 'noop';

export interface SendmailArgs {
  readonly mode: SendmailMode;
  /** -t: recipients from To/Cc/Bcc as well as the arguments. */
  readonly fromHeaders: boolean;
  /** -f / -r. */
  readonly sender?: string;
  /** -F: the full name for a built From (qmail sets $MAILNAME). */
  readonly fullName?: string;
  /** --root DIR (quail's own option). */
  readonly root?: string;
  readonly recipients: readonly string[];
}

/** Options that take a value, attached (`-fjoe`) or as the next argument (`-f joe`). */
const WITH_VALUE = new Set(['f', 'r', 'F', 'o', 'O', 'b', 'N', 'B', 'p', 'R', 'V', 'X', 'C', 'h', 'L', 'e']);
/** Flags that mean nothing here: -i (a lone dot never ends input anyway), -v, -m, -x, -U, -G, -n, -d. */
const IGNORED = new Set(['i', 'v', 'm', 'x', 'U', 'G', 'n', 'd', 'E', 'J']);

const USAGE = 'usage: sendmail [-t] [-f SENDER] [-F NAME] [-bm|-bp|-bs] [-i] [-oX...] [--root DIR] [RECIPIENT...]';

/** Parses sendmail's options the way qmail's sendmail wrapper does; unknown options are a usage error. */
export function parseSendmailArgv(argv: readonly string[]): SendmailArgs {
  let mode: SendmailMode = 'deliver';
  let fromHeaders = false;
  let sender: string | undefined;
  let fullName: string | undefined;
  let root: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '--root' || arg.startsWith('--root=')) {
      root = arg === '--root' ? argv[++i] : arg.slice('--root='.length);
      if (root === undefined) throw permError(`--root needs a directory; ${USAGE}`);
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j] as string;
      if (c === 't') fromHeaders = true;
      else if (c === 'q')
        break; // -q[time]: the scheduler runs the queue by itself
      else if (IGNORED.has(c)) continue;
      else if (WITH_VALUE.has(c)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          if (i + 1 >= argv.length) throw permError(`option -${c} needs a value; ${USAGE}`);
          value = argv[++i] as string;
        }
        if (c === 'f' || c === 'r') sender = value;
        else if (c === 'F') fullName = value;
        else if (c === 'b') {
          if (value === 'm') mode = 'deliver';
          else if (value === 'p') mode = 'list';
          else if (value === 's') mode = 'smtp';
          else if (value === 'i')
            mode = 'noop'; // newaliases: quail has no aliases file to rebuild
          else throw permError(`-b${value} is not supported; ${USAGE}`);
        }
        // -o..., -O..., -N..., -B..., -p..., -R..., -V..., -X..., -C..., -h..., -L..., -e...: accepted, ignored
        break;
      } else throw permError(`unknown option -${c}; ${USAGE}`);
    }
  }
  return {
    mode,
    fromHeaders,
    ...(sender === undefined ? {} : { sender }),
    ...(fullName === undefined ? {} : { fullName }),
    ...(root === undefined ? {} : { root }),
    recipients: argv.slice(i),
  };
}

/** What qmail's sendmail hands qmail-inject: -H with -t, else -a; -f SENDER. */
export function toInjectArgs(s: SendmailArgs): InjectArgs {
  return {
    source: s.fromHeaders ? 'both' : 'args',
    ...(s.sender === undefined ? {} : { sender: s.sender }),
    recipients: s.recipients,
  };
}

/** -bp: the same listing as `quail queue list`. */
async function listQueue(root: string): Promise<number> {
  const q = await openQueue(root, { create: false });
  const now = Math.floor(Date.now() / 1000);
  for (const id of await q.ids()) {
    const m = await q.read(id);
    if (m)
      process.stdout.write(
        `${formatMessage(m, now)}\n${m.recipients.map((r) => `${formatRecipient(r, now)}\n`).join('')}`,
      );
  }
  return 0;
}

/** -bs: one SMTP session on stdin/stdout with qmail-smtpd's rules (no TLS, no AUTH: the caller is local). */
async function smtpOnStdio(root: string): Promise<number> {
  const control = new Control(root);
  const queue = await openQueue(root, { create: false });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const ips = hostIps();
  const stdio = Duplex.from({ readable: process.stdin, writable: process.stdout });
  // runSession only reads and writes its socket when no TLS context is given, so a stdio pair stands in for it.
  const summary = await runSession(stdio as unknown as Socket, {
    control,
    queue,
    env,
    kind: 'smtp',
    authenticator: NO_DIRECTORY,
    authThrottle: new LoginThrottle(),
    limits: DEFAULT_LIMITS,
    clock: () => new Date(),
    isLocalIp: (ip) => ips.has(ip),
    log: () => undefined,
    // QMAILQUEUE in the caller's environment or a queue rule's filter=: run as for an SMTP client
    filter: qmailQueueFilter({ root, path: process.env['PATH'] }),
  });
  return summary.exit;
}

/** Runs `sendmail ARGS` and returns its exit code (errors already printed as `NAME: fatal: ...`). */
export async function runSendmail(name: string, argv: readonly string[], mailq = false): Promise<number> {
  try {
    const s = parseSendmailArgv(argv);
    const root = resolveRoot(s.root);
    const mode = mailq ? 'list' : s.mode;
    if (mode === 'noop') return 0;
    if (mode === 'list') return await listQueue(root);
    if (mode === 'smtp') return await smtpOnStdio(root);
    const env = s.fullName === undefined ? process.env : { ...process.env, MAILNAME: s.fullName };
    return await injectFromStdin(name, root, toInjectArgs(s), env);
  } catch (err) {
    const temporary = !(err instanceof QuailError) || err.temporary;
    process.stderr.write(`${name}: fatal: ${errText(err)}\n`);
    return temporary ? 111 : 100;
  }
}

export function register(program: Command): void {
  program
    .command('sendmail')
    .description(
      `the sendmail interface (also installed as \`sendmail\`): queue a message from stdin.
  -t  recipients from To/Cc/Bcc too   -f SENDER   -F NAME   -bp list the queue   -bs SMTP on stdin/stdout
  -i, -oi, -oem, -odi, -oQ..., -N..., -v and other habitual options are accepted and ignored`,
    )
    .usage('[-t] [-f SENDER] [-F NAME] [-bm|-bp|-bs] [-i] [RECIPIENT...] [--root DIR]')
    .argument('[args...]')
    .helpOption('--help')
    .allowUnknownOption()
    .action(async (argv: string[]) => {
      process.exitCode = await runSendmail('quail sendmail', argv);
    });
}
