// Test helpers: a table authenticator (login password maildir), Maildir fixtures, a line-level POP3 client.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Account, ClientInfo, Pop3Authenticator } from '../../src/pop3d/types.js';

/** Reads `login password maildir` lines from a file at each call (so tests can edit it between logins). */
export class TableAuthenticator implements Pop3Authenticator {
  readonly calls: { login: string; client: ClientInfo }[] = [];
  readonly logins: string[] = [];
  constructor(private readonly file: string) {}

  authenticate(login: string, password: string, client: ClientInfo): Promise<Account | null> {
    this.calls.push({ login, client });
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      const [l, p, maildir] = line.split(' ');
      if (l === login && p === password && maildir) return Promise.resolve({ login, maildir });
    }
    return Promise.resolve(null);
  }

  recordLogin(login: string): Promise<void> {
    this.logins.push(login);
    return Promise.resolve();
  }
}

export function makeMaildir(dir: string): string {
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
  return dir;
}

let seq = 0;
/** Drops a message into new/ (or cur/ with a given name), as a delivery agent would. */
export function putMessage(dir: string, body: string | Buffer, opts: { name?: string; cur?: boolean } = {}): string {
  const name = opts.name ?? `${Date.now()}.${process.pid}_${++seq}.${randomBytes(3).toString('hex')}`;
  writeFileSync(join(dir, opts.cur ? 'cur' : 'new', name), body);
  return name;
}

/** A line-level POP3 client for protocol tests: send lines, read single or multi-line answers. */
export class PopClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;

  private constructor(public socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wakeAll();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wakeAll();
    });
    socket.on('error', () => undefined);
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** `localAddress`: another loopback address to come from (127.0.0.2: the server sees another client). */
  static async open(port: number, tls = false, localAddress?: string): Promise<PopClient> {
    const from = localAddress === undefined ? {} : { localAddress };
    const socket = tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...from })
      : connect({ port, host: '127.0.0.1', ...from });
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new PopClient(socket);
  }

  /** Upgrades after "+OK" to STLS. */
  async startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const tls = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', () => resolve());
      tls.once('error', reject);
    });
    this.socket = tls;
    this.attach(tls);
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Next line without CRLF, or null at EOF. */
  async line(): Promise<string | null> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async cmd(text: string): Promise<string> {
    this.write(`${text}\r\n`);
    return (await this.line()) ?? '<eof>';
  }

  /** Body of a multi-line answer, dot-unstuffed, as lines. */
  async body(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line();
      if (l === null) throw new Error('EOF inside a multi-line answer');
      if (l === '.') return out;
      out.push(l.startsWith('.') ? l.slice(1) : l);
    }
  }

  /** Raw bytes of a multi-line answer up to and including "\r\n.\r\n" (for byte-exact checks). */
  async rawBody(): Promise<Buffer> {
    for (;;) {
      const i = this.buf.indexOf('\r\n.\r\n');
      if (this.buf.subarray(0, 3).toString() === '.\r\n') {
        this.buf = this.buf.subarray(3);
        return Buffer.alloc(0);
      }
      if (i >= 0) {
        const b = this.buf.subarray(0, i + 2);
        this.buf = this.buf.subarray(i + 5);
        return b;
      }
      if (this.ended) throw new Error('EOF inside a multi-line answer');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** One connection: the greeting, USER (which must be +OK), then PASS: PASS's reply line. */
export async function userPass(port: number, user: string, password: string): Promise<string> {
  const p = await PopClient.open(port);
  try {
    await p.line();
    const u = await p.cmd(`USER ${user}`);
    if (!u.startsWith('+OK')) throw new Error(`USER ${user}: ${u}`);
    return await p.cmd(`PASS ${password}`);
  } finally {
    p.socket.destroy();
  }
}
