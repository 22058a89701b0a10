// quail dovecot-conf: the dovecot.conf (or the checkpassword script) that serves this mail root's mailboxes over IMAP.
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Control } from '../control/index.js';
import { checkpasswordScript, dovecotConfig } from '../dovecot/index.js';
import { systemPasswd } from '../users/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';

interface Flags {
  root?: string;
  address: string;
  imapPort: string;
  pop3Port: string;
  baseDir: string;
  log?: string;
  checkpassword: string;
  tlsCert?: string;
  tlsKey?: string;
  quota: boolean;
  script?: boolean;
}

const port = (name: string, v: string): number => {
  const n = /^\d{1,5}$/.test(v) ? Number(v) : -1;
  if (n < 0 || n > 65535) throw usageError(`--${name} ${v} is not a port (0-65535; 0 = off)`);
  return n;
};

export function register(program: Command): void {
  addRootOption(
    program
      .command('dovecot-conf')
      .description(
        "print a dovecot.conf for IMAP on this mail root's Maildirs with the directory's passwords (docs/IMAP.md)",
      )
      .option('--address <ip>', 'listen address', '127.0.0.1')
      .option('--imap-port <n>', 'IMAP port (0 = off)', '143')
      .option('--pop3-port <n>', "Dovecot's POP3 port (0 = off; quail serves POP3 itself)", '0')
      .option('--base-dir <dir>', "Dovecot's base_dir (its sockets and state)", '/run/dovecot-quail')
      .option('--log <file>', 'log_path (default: BASE-DIR/dovecot.log)')
      .option(
        '--checkpassword <program>',
        'the checkpassword program Dovecot runs (make it with --script)',
        '/usr/local/bin/quail-checkpassword',
      )
      .option('--tls-cert <pem>', 'certificate for TLS (with --tls-key; without both, ssl = no: loopback only)')
      .option('--tls-key <pem>', 'private key for TLS')
      .option('--no-quota', 'leave out the Maildir++ quota plugin')
      .option('--script', 'print the checkpassword program instead (save it as --checkpassword, mode 755)'),
  ).action(
    action('dovecot-conf', (flags: Flags) => {
      const root = resolveRoot(flags.root);
      if (flags.script) {
        const main = fileURLToPath(new URL('./main.js', import.meta.url));
        process.stdout.write(checkpasswordScript({ node: process.execPath, main, root }));
        return 0;
      }
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
        throw usageError('--tls-cert and --tls-key go together');
      const control = new Control(root);
      const account = control.single('quailuser').value;
      if (account === null)
        throw usageError(
          `${control.path('quailuser')} is missing: run quail init --root ${root} first (the Maildirs belong to that account)`,
        );
      const pw = systemPasswd({}).byName(account);
      if (!pw)
        throw usageError(
          `${control.path('quailuser')} names ${account}, which is not an account here; create it or fix the file`,
        );
      const imapPort = port('imap-port', flags.imapPort);
      const pop3Port = port('pop3-port', flags.pop3Port);
      if (imapPort === 0 && pop3Port === 0)
        throw usageError('both --imap-port and --pop3-port are 0: Dovecot would serve nothing');
      process.stdout.write(
        dovecotConfig({
          root,
          uid: pw.uid,
          gid: pw.gid,
          baseDir: flags.baseDir,
          address: flags.address,
          imapPort,
          pop3Port,
          checkpassword: flags.checkpassword,
          quota: flags.quota,
          ...(flags.log !== undefined ? { logPath: flags.log } : {}),
          ...(flags.tlsCert !== undefined && flags.tlsKey !== undefined
            ? { tls: { cert: flags.tlsCert, key: flags.tlsKey } }
            : {}),
        }),
      );
      return 0;
    }),
  );
}
