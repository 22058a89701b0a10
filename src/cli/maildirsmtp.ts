// quail maildirsmtp / maildirserial: serialmail's pushes of a held Maildir to the customer's SMTP server.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { bounceConfigFrom } from '../bounce/index.js';
import { Control } from '../control/index.js';
import { DEFAULT_LIFETIME, parseHostPort, pushMaildir, tcpConnector, type MessageReport } from '../held/index.js';
import { openQueue } from '../queue/index.js';
import { classifierFor } from '../remote/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';

interface Flags {
  readonly root?: string;
  readonly b?: boolean;
  readonly t?: string;
}

/** Runs one push and prints one line per message; exit 0, or 111 when anything is left to try again. */
async function run(name: string, dir: string, prefix: string, hostSpec: string, heloArg: string | undefined, f: Flags) {
  let target: { host: string; port: number };
  try {
    target = parseHostPort(hostSpec);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const lifetime = f.t === undefined ? DEFAULT_LIFETIME : Number(f.t);
  if (!Number.isInteger(lifetime) || lifetime < 0)
    throw usageError(`bad -t ${f.t ?? ''}: give the lifetime in seconds`);
  if (prefix === '') throw usageError('PREFIX is empty: give the Delivered-To prefix, e.g. some.example.com-');
  const maildir = resolve(dir);
  try {
    if (!statSync(`${maildir}/new`).isDirectory()) throw new Error('not a directory');
  } catch {
    throw usageError(`${maildir} is not a Maildir (no new/ directory); make it with quail maildirmake`);
  }
  const root = resolveRoot(f.root);
  const control = new Control(root);
  const helo = heloArg ?? control.single('helohost').value;
  if (helo === null || helo === '') throw usageError('no HELOHOST given and control/helohost and me are empty');
  const queue = f.b === true ? await openQueue(root, { create: false }) : undefined;
  try {
    const print = (r: MessageReport): void => {
      process.stdout.write(`${r.file}: ${r.fate}: ${r.report.replace(/\n/g, ' / ')}\n`);
    };
    const result = await pushMaildir({
      dir: maildir,
      prefix,
      connect: tcpConnector(
        target.host,
        target.port,
        control.number('timeoutconnect').value * 1000,
        control.single('outgoingip').value ?? undefined,
      ),
      servername: target.host,
      helo,
      tls: { mode: 'may' },
      remoteMs: control.number('timeoutremote').value * 1000,
      classify: classifierFor(control.list('replyrules').value),
      lifetime,
      ...(queue !== undefined
        ? { bounce: { config: bounceConfigFrom(control), inject: (m) => queue.inject(m).then(String) } }
        : {}),
      onMessage: print,
    });
    if (result.messages.some((m) => m.fate === 'bounced')) queue?.trigger('new');
    if (result.stopped !== undefined) process.stderr.write(`quail ${name}: ${result.stopped}\n`);
    const again = result.messages.some((m) => m.fate === 'kept' || m.fate === 'busy');
    return result.stopped !== undefined || again ? 111 : 0;
  } finally {
    queue?.close();
  }
}

export function register(program: Command): void {
  addRootOption(
    program
      .command('maildirsmtp')
      .description(
        'send a held Maildir to HOST over SMTP, as serialmail does (maildirserial -b -t 1209600): recipient = ' +
          'first Delivered-To without PREFIX; removed after the remote 250; permanent failures bounce; ' +
          'exit 111 when something is left for the next run',
      )
      .argument('<dir>', 'the Maildir')
      .argument('<prefix>', 'Delivered-To prefix, e.g. some.example.com-')
      .argument('<host>', "HOST or HOST:PORT of the customer's SMTP server (port 25 by default)")
      .argument('[helohost]', 'name said in EHLO (default control/helohost)'),
  ).action(
    action('maildirsmtp', (dir: string, prefix: string, host: string, helo: string | undefined, f: Flags) =>
      run('maildirsmtp', dir, prefix, host, helo, { ...f, b: true, t: String(DEFAULT_LIFETIME) }),
    ),
  );
  addRootOption(
    program
      .command('maildirserial')
      .description(
        "send a held Maildir to HOST over SMTP (serialmail's maildirserial with serialsmtp as its client): " +
          '-b bounces permanent failures, -t SECONDS bounces temporary failures of older messages',
      )
      .option('-b', 'bounce permanently refused messages to their Return-Path, then remove them')
      .option('-t <seconds>', `lifetime: temporary failures of older messages bounce (default ${DEFAULT_LIFETIME})`)
      .argument('<dir>', 'the Maildir')
      .argument('<prefix>', 'Delivered-To prefix, e.g. some.example.com-')
      .argument('<host>', "HOST or HOST:PORT of the customer's SMTP server (port 25 by default)")
      .argument('[helohost]', 'name said in EHLO (default control/helohost)'),
  ).action(
    action('maildirserial', (dir: string, prefix: string, host: string, helo: string | undefined, f: Flags) =>
      run('maildirserial', dir, prefix, host, helo, f),
    ),
  );
}
