// quail systemd-unit: a systemd service unit for `quail start` on this machine (paths of this node and this quail).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { action, addRootOption, resolveRoot } from './common.js';

export interface UnitOptions {
  readonly root: string;
  /** The node binary and quail's main.js (default: the ones running this command). */
  readonly node: string;
  readonly main: string;
  readonly logJson: boolean;
}

/**
 * One word of ExecStart: systemd splits on blanks and expands `%` specifiers and `$` variables, so a word with a
 * blank or quote is double-quoted (backslash escapes inside), `%` doubled and `$` doubled (systemd.service(5),
 * "Command lines"; systemd.unit(5), "Specifiers").
 */
export function execWord(w: string): string {
  const plain = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;]/.test(plain) || plain === '' ? `"${plain.replace(/["\\]/g, (c) => `\\${c}`)}"` : plain;
}

/** A path in a setting that takes the rest of the line (WorkingDirectory=): specifiers escaped. */
const pathValue = (p: string): string => p.replace(/%/g, '%%');

/** One entry of a list setting (ReadWritePaths=): quoted when it has a blank, as systemd splits lists on blanks. */
const listWord = (w: string): string =>
  /[\s"'\\]/.test(w) ? `"${pathValue(w).replace(/["\\]/g, (c) => `\\${c}`)}"` : pathValue(w);

/**
 * The unit. Type=simple: quail does not speak sd_notify (that needs a datagram on an AF_UNIX socket, which Node
 * cannot send without a native module), so systemd counts it started once the process runs; `quail status` or a
 * connection tells when the listeners are up. The hardening options are the ones a root parent that binds port
 * 25, forks children that setuid to control/quailuser and runs deliveries as each mailbox's uid can live with:
 * no ProtectHome (mailboxes of passwd users live in their homes), no MemoryDenyWriteExecute (V8 compiles code),
 * no PrivateUsers or DynamicUser (the uids of users/assign are real).
 */
export function systemdUnit(o: UnitOptions): string {
  const exec = [o.node, o.main, 'start', '--root', o.root, ...(o.logJson ? ['--log-json'] : [])].map(execWord);
  return `# quail: a qmail-compatible mail server. Install: quail systemd-unit > /etc/systemd/system/quail.service
#   systemctl daemon-reload && systemctl enable --now quail
# Logs: journalctl -u quail (every event is one line on stdout; errors also go to ${o.root}/run/errors.log).
[Unit]
Description=quail mail server (SMTP, POP3, local and remote delivery) for ${o.root}
After=network-online.target
Wants=network-online.target

[Service]
# quail does not send sd_notify: started = the process runs (quail status tells when the listeners are up)
Type=simple
ExecStart=${exec.join(' ')}
# SIGHUP re-reads control files and servercert.pem; SIGALRM retries deferred mail (systemctl kill -s ALRM quail)
ExecReload=/bin/kill -HUP $MAINPID
WorkingDirectory=${pathValue(o.root)}
# SIGTERM to the supervisor only: it stops the children itself (sessions 10 s + 30 s, deliveries 60 s);
# whatever is left after TimeoutStopSec is killed. Mail acknowledged with 250 is on disk either way.
KillMode=mixed
TimeoutStopSec=150
Restart=on-failure
RestartSec=2s
UMask=0022
LimitNOFILE=65536

# Hardening that fits a root supervisor which drops privileges for everything that reads network input
NoNewPrivileges=yes
ProtectSystem=full
ReadWritePaths=${listWord(`-${o.root}`)}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
# binding ports below 1024; switching to control/quailuser and to each mailbox's uid; reading and chowning queue
# and mailbox files of other accounts; signalling its children
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_KILL

[Install]
WantedBy=multi-user.target
`;
}

/** dist/cli/main.js beside this file. */
const thisMain = (): string => join(dirname(fileURLToPath(import.meta.url)), 'main.js');

export function register(program: Command): void {
  addRootOption(
    program
      .command('systemd-unit')
      .description('print a systemd service unit that runs quail start for this mail root')
      .option('--node <path>', 'the node binary in ExecStart (default: the one running this command)')
      .option('--log-json', 'log JSON objects (pino) instead of key=value lines'),
  ).action(
    action('systemd-unit', (flags: { root?: string; node?: string; logJson?: boolean }) => {
      process.stdout.write(
        systemdUnit({
          root: resolve(resolveRoot(flags.root)),
          node: resolve(flags.node ?? process.execPath),
          main: thisMain(),
          logJson: flags.logJson === true,
        }),
      );
      return 0;
    }),
  );
}
