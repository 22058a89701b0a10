// quail start: run every component in the foreground until SIGTERM (SIGHUP reloads, SIGALRM flushes).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { errText, ignoreUserSignals } from '../core/index.js';
import { errorsFile, makeEventLog, startQuail, type Running } from '../start/index.js';
import { action, addRootOption, resolveRoot } from './common.js';
import { writeBin } from './toolbox.js';
import { initRoot, render } from './init.js';

interface StartFlags {
  root?: string;
  smtp?: string;
  submission?: string;
  logJson?: boolean;
  init?: boolean;
  pop3?: string[];
  pop3s?: string[];
}

/** --init: make the embedded default root when control/me is missing (quail init's own logic). */
function initIfMissing(root: string): void {
  if (existsSync(join(root, 'control', 'me'))) return;
  process.stdout.write(render(root, initRoot({ root })));
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function register(program: Command): void {
  addRootOption(
    program
      .command('start')
      .description(
        'run quail in the foreground: SMTP listeners, scheduler, deliveries (SIGTERM stops, SIGHUP reloads, SIGALRM flushes)',
      )
      .option('--smtp <host:port>', 'SMTP listener (replaces the smtp lines of control/listeners)')
      .option('--submission <host:port>', 'submission listener (replaces the submission lines of control/listeners)')
      .option(
        '--pop3 <host:port>',
        'POP3 listener, plain with STLS (repeatable; replaces the pop3 lines of control/listeners; none = no POP3)',
        collect,
      )
      .option(
        '--pop3s <host:port>',
        'POP3 listener with implicit TLS (repeatable; replaces the pop3 lines of control/listeners)',
        collect,
      )
      .option('--log-json', 'log one JSON object per event (pino) instead of key=value lines')
      .option('--init', 'first create the mail root with quail init when control/me is missing')
      .addHelpText(
        'after',
        '\nEnvironment:\n  QUAIL_MX_PORT=N  deliver to MX hosts on port N instead of 25 (for tests and lab setups)',
      ),
  ).action(
    action('start', async (flags: StartFlags) => {
      const root = resolveRoot(flags.root);
      if (flags.init) initIfMissing(root);
      // bin/ (qmail's helper programs in the delivery PATH) follows this node and this quail after an upgrade.
      await writeBin(root).catch((err: unknown) =>
        process.stderr.write(
          `quail start: warning: unable to write ${root}/bin (qmail's helper programs): ${errText(err)}\n`,
        ),
      );
      const log = makeEventLog({ json: flags.logJson === true, out: process.stdout, errorsFile: errorsFile(root) });
      // Signals that arrive while starting are kept and acted on once running (SIGHUP's default would kill us).
      const now: { running?: Running } = {};
      let stopWanted: string | undefined;
      let stopNow: ((sig: string) => void) | undefined;
      const onStop = (sig: string) => (): void => {
        log.event('quail.signal', { signal: sig });
        if (stopNow) stopNow(sig);
        else stopWanted ??= sig;
      };
      let reloadWanted = false;
      process.once('SIGTERM', onStop('SIGTERM'));
      process.once('SIGINT', onStop('SIGINT'));
      // A reload logs its own failures (supervisor.ts reloadStep); this catch is the last guard: SIGHUP never ends root.
      const reload = (r: Running): void => {
        try {
          r.reload();
        } catch (err) {
          log.event('quail.warning', { step: 'reload', why: errText(err) });
        }
      };
      process.on('SIGHUP', () => (now.running ? reload(now.running) : (reloadWanted = true)));
      process.on('SIGALRM', () => now.running?.flush());
      ignoreUserSignals((sig) => log.event('quail.ignored', { signal: sig }));
      // Whatever a failed start left behind (it stops what it started; a step past its bound may linger) must not keep
      // the process alive without a scheduler: `fatal:` is printed by action() and the process exits 100/111.
      const exitSoon = (fallback: number): void =>
        void setTimeout(() => process.exit(process.exitCode ?? fallback), 2000).unref();
      const live = await startQuail({
        root,
        log,
        ...(flags.smtp !== undefined ? { smtp: flags.smtp } : {}),
        ...(flags.submission !== undefined ? { submission: flags.submission } : {}),
        ...(flags.pop3 || flags.pop3s ? { pop3: { pop3: flags.pop3, pop3s: flags.pop3s } } : {}),
      }).catch((err: unknown) => {
        exitSoon(111);
        throw err;
      });
      now.running = live;
      if (reloadWanted) reload(live);
      await new Promise<void>((resolve) => {
        stopNow = (): void => {
          void live.stop().then(resolve, (err: unknown) => {
            log.event('quail.error', { error: errText(err) });
            resolve();
          });
        };
        if (stopWanted !== undefined) stopNow(stopWanted);
      });
      // Whatever a stuck step left behind (its bound was logged) must not keep the process alive.
      exitSoon(0);
      return 0;
    }),
  );
}
