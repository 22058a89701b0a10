// Test kit: a scripted SMTP server on a loopback address, and a throw-away mail root for remote deliveries.
// One implementation for every remote test (what testdns.ts is for DNS); no package needed.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../../src/control/index.js';

export interface SmtpScript {
  /** Listen on this port (default: any free one). */
  readonly port?: number;
  /** `normal`; `drop` closes the connection right after the final dot, before any reply; `silent` never greets. */
  readonly mode?: 'normal' | 'drop' | 'silent';
  /** EHLO keywords (a multi-line 250 after the name); none by default. */
  readonly ehlo?: readonly string[];
  /**
   * Replies by verb (`EHLO`, `HELO`, `MAIL`, `RCPT`, `DATA`, `RSET`, ...) that replace the defaults, plus
   * `greeting` (default `220 test ESMTP`) and `end` (after the final dot, default `250 ok queued`).
   */
  readonly replies?: Partial<Record<string, string>>;
  /** A reply for one RCPT address (undefined: the default). Recipients answered 2xx are recorded. */
  readonly rcpt?: (address: string) => string | undefined;
  /** The reply to DATA, given how many recipients this transaction accepted (before `replies.DATA`). */
  readonly data?: (accepted: number) => string;
  /**
   * Hold the replies to MAIL and RCPT until DATA arrives, then send them all with DATA's: a client that waits for
   * MAIL's reply before sending DATA (no pipelined group, RFC 2920) waits for good.
   */
  readonly group?: boolean;
  /**
   * After this many replies to MAIL and RCPT on a connection, the next MAIL, RCPT or DATA is not answered: the replies
   * held so far (`group`) are sent and the connection is closed (a FIN after them), as by a server that dies in the
   * middle of a pipelined group's replies. What the client still sends is recorded in `lines`, never answered.
   */
  readonly hangup?: number;
}

/** One accepted message: its recipients and the DATA bytes as sent (CRLF, dot-stuffed), latin1. */
export interface SmtpMessage {
  readonly recipients: readonly string[];
  readonly raw: string;
}

/** What one connection saw. */
export interface SmtpConnection {
  /** The client's address (which source address a delivery used: control/outgoingip, a queue's outgoingip=). */
  readonly remoteAddress: string;
  /** Every command line, latin1 (one character per byte). */
  readonly lines: string[];
  /** The DATA bytes of every message on this connection, concatenated. */
  data: string;
  /** The DATA bytes of a message whose final dot never came (the connection closed in DATA), else undefined. */
  unfinished?: string;
  /** The connection has closed. */
  closed: boolean;
}

export interface TestSmtp {
  readonly server: Server;
  readonly port: number;
  readonly connections: SmtpConnection[];
  /** Every command line of every connection, in arrival order. */
  readonly lines: string[];
  readonly messages: SmtpMessage[];
  close(): Promise<void>;
}

/** A message's DATA as the message file held it: dots unstuffed, CRLF back to LF. */
export function unstuffed(raw: string): Buffer {
  return Buffer.from(
    raw
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? l.slice(1) : l))
      .join('\n'),
    'latin1',
  );
}

/** Starts a scripted SMTP server on `host` (a 127.0.0.x address). Unref'd: a failed test never hangs on it. */
export async function testSmtp(host: string, script: SmtpScript = {}): Promise<TestSmtp> {
  const connections: SmtpConnection[] = [];
  const lines: string[] = [];
  const messages: SmtpMessage[] = [];
  const replies = script.replies ?? {};
  const server = createServer((s: Socket) => {
    const conn: SmtpConnection = { remoteAddress: s.remoteAddress ?? '', lines: [], data: '', closed: false };
    connections.push(conn);
    s.on('error', () => undefined);
    s.on('close', () => (conn.closed = true));
    if (script.mode === 'silent') return;
    s.setEncoding('latin1');
    s.write(`${replies['greeting'] ?? '220 test ESMTP'}\r\n`);
    let buf = '';
    let raw: string | undefined;
    let rcpts: string[] = [];
    let held: string[] = [];
    let given = 0; // replies to MAIL and RCPT, sent or held
    let hungUp = false;
    s.on('close', () => {
      if (raw !== undefined) conn.unfinished = raw;
    });
    s.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (raw !== undefined) {
          if (line !== '.') {
            raw += `${line}\r\n`;
            continue;
          }
          if (script.mode === 'drop') return void s.destroy();
          messages.push({ recipients: rcpts, raw });
          conn.data += raw;
          raw = undefined;
          rcpts = [];
          s.write(`${replies['end'] ?? '250 ok queued'}\r\n`);
          continue;
        }
        conn.lines.push(line);
        lines.push(line);
        if (hungUp) continue;
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'QUIT') return void s.end('221 bye\r\n');
        if (script.hangup !== undefined && given >= script.hangup && ['MAIL', 'RCPT', 'DATA'].includes(verb)) {
          hungUp = true;
          s.end(held.map((r) => `${r}\r\n`).join(''));
          continue;
        }
        let reply = verb === 'DATA' && script.data ? script.data(rcpts.length) : replies[verb];
        if (reply === undefined) {
          if (verb === 'EHLO')
            reply = ['test', ...(script.ehlo ?? [])]
              .map((k, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${k}`)
              .join('\r\n');
          else if (verb === 'DATA') reply = '354 go';
          else if (verb === 'RCPT')
            reply = script.rcpt?.(line.slice(line.indexOf('<') + 1, line.lastIndexOf('>'))) ?? '250 ok';
          else reply = '250 ok';
        }
        if (verb === 'RCPT' && reply.startsWith('2'))
          rcpts.push(line.slice(line.indexOf('<') + 1, line.lastIndexOf('>')));
        if (verb === 'RSET') rcpts = [];
        if (verb === 'DATA' && reply.startsWith('354')) raw = '';
        if (verb === 'MAIL' || verb === 'RCPT') given++;
        if (script.group === true && (verb === 'MAIL' || verb === 'RCPT')) held.push(reply);
        else {
          s.write(`${[...held, reply].join('\r\n')}\r\n`);
          held = [];
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(script.port ?? 0, host, resolve);
  });
  server.unref();
  const a = server.address();
  assert.ok(a !== null && typeof a === 'object');
  return {
    server,
    port: a.port,
    connections,
    lines,
    messages,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A throw-away mail root with these control files (`me` defaults to relay.test) and a message file. */
export function testWorld(
  files: Record<string, string>,
  message: string | Buffer = 'Subject: test\n\nhello\n',
): { root: string; control: () => Control; msg: string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-remote-'));
  mkdirSync(join(root, 'control'));
  for (const [k, v] of Object.entries({ me: 'relay.test\n', ...files })) writeFileSync(join(root, 'control', k), v);
  const msg = join(root, 'msg');
  writeFileSync(msg, typeof message === 'string' ? Buffer.from(message, 'latin1') : message);
  return { root, control: () => new Control(root), msg };
}
