// SMTP sinks on 127.0.0.1 that count the messages they accept: Postfix's smtp-sink, or an in-process one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const SMTP_SINK = '/usr/sbin/smtp-sink';
export const HOST = '127.0.0.1';

/** An SMTP sink that counts the messages it accepted (final dot answered 250). */
export interface Sink {
  readonly label: string;
  readonly port: number;
  count(): number;
  stop(): void;
}

/** A minimal in-process sink: 250 to everything, PIPELINING, swallows DATA (used when smtp-sink is absent). */
async function nodeSink(): Promise<Sink> {
  let messages = 0;
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
            messages++;
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
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const a = server.address();
  return {
    label: 'an in-process sink',
    port: typeof a === 'object' && a !== null ? a.port : 0,
    count: () => messages,
    stop: () => server.close(),
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const a = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof a === 'object' && a !== null ? a.port : 0;
}

/** True once something accepts TCP connections on HOST:port (tried for up to 10 s). */
async function listening(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: HOST, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Postfix's smtp-sink as a separate process; its `-c` counters (`mesg=N` on stdout) count the messages. */
async function smtpSink(): Promise<Sink> {
  const port = await freePort();
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-c', `${HOST}:${port}`, '1024'];
  const child = spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let messages = 0;
  let tail = '';
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (d: string) => {
    tail = (tail + d).slice(-200);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    const last = all[all.length - 1];
    if (last?.[1] !== undefined) messages = Math.max(messages, Number(last[1]));
  });
  if (!(await listening(port))) {
    child.kill();
    throw new Error(`${SMTP_SINK} did not listen on ${HOST}:${port}`);
  }
  return { label: "Postfix's smtp-sink", port, count: () => messages, stop: () => child.kill() };
}

/** smtp-sink when installed, else the in-process sink. */
export function startSink(): Promise<Sink> {
  return existsSync(SMTP_SINK) ? smtpSink() : nodeSink();
}
