// Section: relay throughput: 4 KiB messages delivered by RemoteEngine to a sink, 10 and 50 concurrent deliveries.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { RemoteEngine } from '../remote/index.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const SMTP_SINK = '/usr/sbin/smtp-sink';

/** A minimal in-process sink on 127.0.0.1: 250 to everything, PIPELINING, swallows DATA. */
async function nodeSink(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.setEncoding('latin1');
    s.on('error', () => undefined);
    s.write('220 sink ESMTP\r\n');
    let buf = '';
    let inData = false;
    s.on('data', (c: string) => {
      buf += c;
      let nl: number;
      let out = '';
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            out += '250 ok\r\n';
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') out += '250-sink\r\n250 PIPELINING\r\n';
        else if (verb === 'DATA') {
          inData = true;
          out += '354 go\r\n';
        } else if (verb === 'QUIT') {
          s.end(`${out}221 bye\r\n`);
          return;
        } else out += '250 ok\r\n';
      }
      if (out !== '') s.write(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0 };
}

async function freePort(): Promise<number> {
  const s = await nodeSink();
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
  return s.port;
}

/** Delivers n one-recipient messages (distinct files) with `concurrency` in flight; returns msg/s and the count. */
async function drive(ctx: BenchContext, root: string, port: number, n: number, concurrency: number): Promise<{ rate: number; done: number; failed: number }> {
  mkdirSync(join(root, 'control'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), 'bench.example.test\n');
  writeFileSync(join(root, 'control', 'smtproutes'), `:127.0.0.1:${port}\n`);
  const head = 'From: bench@example.test\nTo: rcpt@sink.test\nSubject: relay bench\n\n';
  const msgs = Array.from({ length: concurrency }, (_, i) => {
    const p = join(root, `msg${i}`);
    writeFileSync(p, head + `${'x'.repeat(71)}\n`.repeat(Math.floor((4096 - head.length) / 72)));
    return p;
  });
  const engine = new RemoteEngine({ root, control: () => new Control(root), perHost: concurrency, idleMs: 2000 });
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ctx.caseBudgetMs) * 1_000_000n;
  let next = 0;
  let done = 0;
  let failed = 0;
  const worker = async (w: number): Promise<void> => {
    while (next < n && process.hrtime.bigint() < deadline) {
      const i = next++;
      const r = await engine.deliver({ recipient: `r${i}@sink.test`, sender: 'bench@example.test', messagePath: msgs[w] ?? '' });
      if (r.result === 'success') done++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  engine.close();
  return { rate: done / seconds, done, failed };
}

export const relaySection: BenchSection = {
  name: 'relay throughput (4 KiB messages to an SMTP sink on 127.0.0.1, one recipient each)',
  run: async (ctx) => {
    const n = ctx.n(10_000);
    const rows: BenchRow[] = [];
    const sinks: Array<{ label: string; start: () => Promise<{ port: number; stop: () => void }> }> = [
      {
        label: 'node sink',
        start: async () => {
          const s = await nodeSink();
          return { port: s.port, stop: () => s.server.close() };
        },
      },
    ];
    if (existsSync(SMTP_SINK)) {
      sinks.push({
        label: "Postfix's smtp-sink",
        start: async () => {
          const port = await freePort();
          const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-c', `127.0.0.1:${port}`, '256'];
          const child: ChildProcess = spawn(SMTP_SINK, args, { stdio: 'ignore' });
          await new Promise((resolve) => setTimeout(resolve, 300)); // let it bind
          return { port, stop: () => child.kill() };
        },
      });
    }
    for (const sink of sinks) {
      for (const concurrency of [10, 50]) {
        const s = await sink.start();
        ctx.progress(`relay to ${sink.label}, concurrency ${concurrency}, ${n} messages`);
        try {
          const r = await drive(ctx, join(ctx.workDir, `${sink.label.replace(/\W+/g, '-')}-${concurrency}`), s.port, n, concurrency);
          const cut = r.done + r.failed < n ? `, stopped at the ${Math.round(ctx.caseBudgetMs / 1000)} s budget` : '';
          rows.push({
            name: `remote relay to ${sink.label}, concurrency ${concurrency}`,
            value: r.rate,
            unit: 'msg/s',
            note: `${r.done} delivered, ${r.failed} not${cut}; connections reused (RemoteEngine pool)`,
          });
        } finally {
          s.stop();
        }
      }
    }
    return rows;
  },
};
