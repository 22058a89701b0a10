// The side-by-side section's relay rows (issue 14's "relay to an SMTP sink"): SMTP in → queue → remote SMTP out to a
// sink on 127.0.0.1, quail start and Postfix under the same smtp-source load, with ratios.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withPostfix } from './postfix.js';
import { quailCli } from './quail-process.js';
import { freePort, HOST, startSink, type Sink } from './sink.js';
import type { BenchContext, BenchRow } from './types.js';
import {
  type CaseLoad,
  CLIENTS,
  cpuPer,
  describe,
  measurePostfix,
  measureQuail,
  type Measured,
  perRole,
  rate,
} from './versus-measure.js';

/**
 * quail start relaying: `quail init`, no domain of the load in rcpthosts, 127.0.0.1 allowed to relay (tcp.smtp
 * RELAYCLIENT), every remote domain routed to the sink (smtproutes), as many deliveries at once as clients
 * (concurrencyremote, concurrencyremotehost: what the Postfix case's destination concurrency is).
 */
async function quailRelayCase(ctx: BenchContext, sink: Sink, load: CaseLoad): Promise<Measured> {
  const root = join(ctx.workDir, `quail-relay-${load.clients}`);
  mkdirSync(root, { mode: 0o755 });
  quailCli(['init', '--root', root, '--me', 'bench.test']);
  const controls: Array<[string, string]> = [
    ['smtproutes', `:${HOST}:${sink.port}`],
    ['concurrencyremote', `${load.clients}`],
    ['concurrencyremotehost', `${load.clients}`],
    ['tcp.smtp', '127.:allow,RELAYCLIENT=""'],
  ];
  for (const [name, value] of controls) writeFileSync(join(root, 'control', name), `${value}\n`);
  return measureQuail(root, `relaying to ${sink.label}, ${load.clients} clients`, load);
}

/** Postfix relaying everything from 127.0.0.0/8 to the sink (relayhost), nothing held, the same concurrency. */
async function postfixRelayCase(ctx: BenchContext, sink: Sink, load: CaseLoad): Promise<Measured> {
  const port = await freePort();
  const o = {
    dir: join(ctx.workDir, `postfix-relay-${load.clients}`),
    listen: { host: HOST, port },
    relay: { host: HOST, port: sink.port },
    concurrency: load.clients,
    hold: false,
  };
  return withPostfix(o, (pf) => measurePostfix(pf, port, `relaying to ${sink.label}, ${load.clients} clients`, load));
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
      const load = { count: () => sink.count(), n, clients, budgetMs, progress: ctx.progress };
      const q = await quailRelayCase(ctx, sink, load);
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
      const p = await postfixRelayCase(ctx, sink, load);
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
