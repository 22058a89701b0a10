// A Dovecot 2.3 configuration serving quail's mailboxes: checkpassword passdb (quail checkpassword), static userdb.
import { join } from 'node:path';

export interface DovecotOptions {
  /** quail's mail root (domains/<domain>/<user>/Maildir below it). */
  readonly root: string;
  /**
   * The command Dovecot runs as its checkpassword program (a script that runs `quail checkpassword --root ROOT "$@"`,
   * see checkpasswordScript), or a passwd-file (`user@domain:{SHA512-CRYPT}...`; the bench uses it).
   */
  readonly checkpassword?: string;
  readonly passwdFile?: string;
  /** The account that owns the domains' Maildirs (control/quailuser). */
  readonly uid: number;
  readonly gid: number;
  /** Where Dovecot keeps its sockets and state (base_dir, state_dir); its own per instance. */
  readonly baseDir: string;
  /** Listen address (default 127.0.0.1) and ports; 0 or absent = that protocol's listener is off. */
  readonly address?: string;
  readonly imapPort?: number;
  readonly pop3Port?: number;
  /** Log file (default: baseDir/dovecot.log). */
  readonly logPath?: string;
  /** PEM files for TLS; absent = ssl off (loopback tests only). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Maildir++ quota plugin with GETQUOTAROOT (default true). */
  readonly quota?: boolean;
  /** Dovecot's internal accounts (default dovecot and dovenull, what Debian's package creates). */
  readonly internalUser?: string;
  readonly loginUser?: string;
}

/** The dovecot.conf text (complete: start it with `dovecot -F -c FILE`). */
export function dovecotConfig(o: DovecotOptions): string {
  const address = o.address ?? '127.0.0.1';
  const protocols = [o.imapPort ? 'imap' : '', o.pop3Port ? 'pop3' : ''].filter((p) => p !== '');
  const quota = o.quota ?? true;
  const lines = [
    '# Dovecot beside quail (docs/IMAP.md): same mailboxes, same passwords.',
    `protocols = ${protocols.join(' ')}`,
    `listen = ${address}`,
    `base_dir = ${o.baseDir}`,
    `state_dir = ${join(o.baseDir, 'state')}`,
    `log_path = ${o.logPath ?? join(o.baseDir, 'dovecot.log')}`,
    `default_internal_user = ${o.internalUser ?? 'dovecot'}`,
    `default_login_user = ${o.loginUser ?? 'dovenull'}`,
    'first_valid_uid = 1',
    'auth_mechanisms = plain login',
    ...(o.tls
      ? ['ssl = required', `ssl_cert = <${o.tls.cert}`, `ssl_key = <${o.tls.key}`]
      : ['ssl = no', '# without TLS only loopback clients may send passwords', 'disable_plaintext_auth = no']),
    '',
    "# Passwords: quail's directory, through the checkpassword interface (user@domain or user%domain).",
    'passdb {',
    ...(o.passwdFile !== undefined
      ? ['  driver = passwd-file', `  args = scheme=SHA512-CRYPT username_format=%u ${o.passwdFile}`]
      : ['  driver = checkpassword', `  args = ${o.checkpassword ?? 'quail-checkpassword'}`]),
    '}',
    "# Mailboxes: <root>/domains/<domain>/<user>/Maildir, owned by the domains' delivery account.",
    'userdb {',
    '  driver = static',
    `  args = uid=${o.uid} gid=${o.gid} home=${join(o.root, 'domains')}/%d/%n`,
    '}',
    'mail_location = maildir:~/Maildir',
    '',
    '# checkpassword reads the directory (and records the login time): the auth process runs as root;',
    '# quail checkpassword is a Node.js program, which reserves more address space than the default 256M limit.',
    'service auth {',
    '  user = root',
    '  vsz_limit = 0',
    '}',
    'service imap-login {',
    '  inet_listener imap {',
    `    port = ${o.imapPort ?? 0}`,
    '  }',
    '  inet_listener imaps {',
    '    port = 0',
    '  }',
    '}',
    'service pop3-login {',
    '  inet_listener pop3 {',
    `    port = ${o.pop3Port ?? 0}`,
    '  }',
    '  inet_listener pop3s {',
    '    port = 0',
    '  }',
    '}',
    "# POP3 UIDLs from the Maildir file names, like quail's pop3d",
    'pop3_uidl_format = %f',
  ];
  if (quota) {
    lines.push(
      '',
      '# Maildir++ quota: the maildirsize file quail keeps (limits from its first line), GETQUOTAROOT over IMAP.',
      'mail_plugins = $mail_plugins quota',
      'protocol imap {',
      '  mail_plugins = $mail_plugins imap_quota',
      '}',
      'plugin {',
      '  quota = maildir:User quota',
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The checkpassword wrapper script: Dovecot runs one program with the reply program as its argument. */
export function checkpasswordScript(o: { node: string; main: string; root: string }): string {
  return [
    '#!/bin/sh',
    "# Dovecot's checkpassword passdb -> quail's directory. As root, quail checkpassword runs Dovecot's reply",
    "# program as the domain's delivery account; checkpassword-reply accepts that only with INSECURE_SETUID=1.",
    'INSECURE_SETUID=1',
    'export INSECURE_SETUID',
    `exec ${o.node} ${o.main} checkpassword --root ${o.root} "$@"`,
    '',
  ].join('\n');
}
