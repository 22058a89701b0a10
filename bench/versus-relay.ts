// The side-by-side section's relay rows (issue 14's "relay to an SMTP sink"): SMTP in → queue → remote SMTP out to a
// sink on 127.0.0.1, quail start and Postfix under the same smtp-source load, with ratios.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostfix } from './postfix.js';
import { quailCli, sleep, startQuailProcess } from './quail-process.js';
import { freePort, HOST, startSink, type Sink } from './sink.js';
import type { BenchContext, BenchRow } from './types.js';
import { CLIENTS, cpuPer, describe, measure, type Measured, perRole, rate, warmup } from './versus-measure.js';

/**
 * quail start relaying: `quail init`, no domain of the load in rcpthosts, 127.0.0.1 allowed to relay (tcp.smtp
 * RELAYCLIENT), every remote domain routed to the sink (smtproutes), as many deliveries at once as clients
 * (concurrencyremote, concurrencyremotehost: what the Postfix case's destination concurrency is).
 */
async function quailRelayCase(
  ctx: BenchContext,
  sink: Sink,
  clients: number,
  n: number,
  budgetMs: number,
): Promise<Measured> {
  const root = join(ctx.workDir, `quail-relay-${clients}`);
  mkdirSync(root, { mode: 0o755 });
  quailCli(['init', '--root', root, '--me', 'bench.test']);
  const port = await freePort();
  const controls: Array<[string, string]> = [
    ['smtproutes', `:${HOST}:${sink.port}`],
    ['concurrencyremote', `${clients}`],
    ['concurrencyremotehost', `${clients}`],
    ['tcp.smtp', '127.:allow,RELAYCLIENT=""'],
    // authcheck=off: as in the local cases (no DNS here; Postfix checks nothing either)
    ['listeners', `${HOST}:${port} smtp maxconn=500 maxperip=500 authcheck=off`],
  ];
  for (const [name, value] of controls) writeFileSync(join(root, 'control', name), `${value}\n`);
  let queued = 0;
  const quail = await startQuailProcess(root, {
    args: ['--pop3', 'none'],
    ownListeners: true,
    onLine: (l) => {
      if (l.includes(' smtp.queued ')) queued++;
    },
  });
  try {
    const pid = quail.child.pid ?? 0;
    ctx.progress(`versus: quail start relaying to ${sink.label}, ${clients} clients, ${n} messages after ${warmup()}`);
    return await measure({ port, pid: () => pid, count: () => sink.count(), n, clients, budgetMs }, () => queued);
  } finally {
    await quail.stop();
  }
}

/** Postfix relaying everything from 127.0.0.0/8 to the sink (relayhost), nothing held, the same concurrency. */
async function postfixRelayCase(
  ctx: BenchContext,
  sink: Sink,
  clients: number,
  n: number,
  budgetMs: number,
): Promise<Measured> {
  const port = await freePort();
  const pf = startPostfix({
    dir: join(ctx.workDir, `postfix-relay-${clients}`),
    listen: { host: HOST, port },
    relay: { host: HOST, port: sink.port },
    concurrency: clients,
    hold: false,
  });
  const onSignal = (): void => {
    pf.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    ctx.progress(`versus: Postfix relaying to ${sink.label}, ${clients} clients, ${n} messages after ${warmup()}`);
    await sleep(500);
    const pid = pf.masterPid();
    if (pid === undefined) throw new Error(`Postfix is not running: ${pf.log().slice(-1000)}`);
    return await measure({ port, pid: () => pid, count: () => sink.count(), n, clients, budgetMs });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    pf.stop();
  }
}

/**
 * The relay rows at 10 and 50 clients: delivered (counted at the sink), CPU per message (the sink's own CPU is in
 * neither), and the ratios; quail's alone when Postfix cannot run (`why`).
 */
export async function relayRows(
  ctx: BenchContext,
  n: number,
  budgetMs: number,
  why: string | undefined,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const sink = await startSink();
  try {
    for (const clients of CLIENTS) {
      const q = await quailRelayCase(ctx, sink, clients, n, budgetMs);
      const at = `SMTP in → ${sink.label}`;
      rows.push(
        { name: `quail, relayed, ${clients} clients`, value: rate(q), unit: 'msg/s', note: `${at}; ${describe(q)}` },
        {
          name: `quail, relay CPU per message, ${clients} clients`,
          value: cpuPer(q),
          unit: 'ms',
          note: `all quail processes; by process: ${perRole(q)}`,
        },
      );
      if (why !== undefined) continue;
      const p = await postfixRelayCase(ctx, sink, clients, n, budgetMs);
      rows.push(
        { name: `Postfix, relayed, ${clients} clients`, value: rate(p), unit: 'msg/s', note: `${at}; ${describe(p)}` },
        {
          name: `Postfix, relay CPU per message, ${clients} clients`,
          value: cpuPer(p),
          unit: 'ms',
          note: `master and its children; by process: ${perRole(p)}`,
        },
        { name: `ratio quail / Postfix, relayed, ${clients} clients`, value: rate(q) / rate(p), unit: 'x' },
        {
          name: `ratio quail / Postfix, relay CPU per message, ${clients} clients`,
          value: cpuPer(q) / cpuPer(p),
          unit: 'x',
        },
      );
    }
  } finally {
    sink.stop();
  }
  return rows;
}
