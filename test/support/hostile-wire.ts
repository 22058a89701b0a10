// Test helpers (not a test) for issue 12's hostile-input battery: a raw SMTP/POP3 client with deadlines, STARTTLS,
// FIN and RST; checks that nothing internal leaks to a client; the DATA oracle; loopback addresses; a job pool.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureVersion, type TLSSocket } from 'node:tls';

/** Text that must never reach a client: a stack frame, an exception name, a file path of the program. */
const LEAK = [
  /^\s+at\s/m,
  /\bat \S+ \(/,
  /:\d+:\d+\)?$/m,
  /\b[A-Z][a-zA-Z]*Error\b/,
  /\bError:/,
  /\bERR_[A-Z_]{3,}/,
  /node:internal/,
  /\/(?:work|tmp|dist|src|node_modules|usr|root|home|var)\/\S/,
  /\.(?:js|ts|mjs|cjs):\d+/,
];

/** Asserts that server output carries no stack trace, exception name or path (issue 12). */
export function assertNoLeak(text: string, what: string): void {
  for (const re of LEAK)
    assert.doesNotMatch(text, re, `${what}: the server leaked internals (${String(re)}):\n${text.slice(0, 2000)}`);
}

/** Every line of an SMTP reply stream is `DDD ` or `DDD-` followed by printable text. */
export function assertSmtpLines(text: string, what: string): void {
  for (const line of text.split('\r\n').slice(0, -1)) {
    assert.match(
      line,
      /^[2-5]\d\d[ -][\x20-\x7e]*$/,
      `${what}: malformed reply line ${JSON.stringify(line)} in\n${text.slice(0, 2000)}`,
    );
  }
  assertNoLeak(text, what);
}

type Waiter = () => void;

/** A raw client: bytes in, bytes out, replies and lines read with deadlines, STARTTLS, FIN and RST. */
export class Wire {
  private buf: Buffer = Buffer.alloc(0);
  /** Everything received so far (latin1), for leak checks. */
  received = '';
  closed = false;
  private waiters: Waiter[] = [];
  private raw: Socket;

  private constructor(private sock: Socket) {
    this.raw = sock;
    this.attach(sock);
  }

  /**
   * Connects to `host` (default 127.0.0.1):port, from `localAddress` (a 127.x address) when given; `tls` = implicit
   * TLS.
   */
  static connect(port: number, opts: { tls?: boolean; localAddress?: string; host?: string } = {}): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const raw = netConnect({
        host: opts.host ?? '127.0.0.1',
        port,
        ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
      });
      raw.once('error', reject);
      raw.once('connect', () => {
        raw.off('error', reject);
        if (!opts.tls) return resolve(new Wire(raw));
        const w = new Wire(raw);
        w.upgrade().then(() => resolve(w), reject);
      });
    });
  }

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('error', this.onClose);
    s.on('close', this.onClose);
    s.on('end', this.onClose);
  }

  private readonly onData = (c: Buffer): void => {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    this.received += c.toString('latin1');
    if (this.received.length > 1_000_000) this.received = this.received.slice(-500_000);
    this.wake();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.wake();
  };

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until<T>(take: () => T | undefined, ms: number): Promise<T | string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** TLS on the connection as it is now (after `220 ready` or `+OK begin TLS`); rejects if the handshake fails. */
  upgrade(opts: { minVersion?: SecureVersion; maxVersion?: SecureVersion } = {}): Promise<void> {
    const raw = this.sock;
    raw.off('data', this.onData);
    raw.off('error', this.onClose);
    raw.off('close', this.onClose);
    raw.off('end', this.onClose);
    return new Promise((resolve, reject) => {
      const tls: TLSSocket = tlsConnect({
        socket: raw,
        rejectUnauthorized: false,
        servername: 'mail.hostile.test',
        ...opts,
      });
      const failed = (err: Error): void => {
        // the handshake failed: go on watching the TCP connection (the test then expects the server to close it)
        this.attach(raw);
        tls.destroy();
        reject(err);
      };
      tls.once('secureConnect', () => {
        tls.off('error', failed);
        this.sock = tls;
        this.attach(tls);
        resolve();
      });
      tls.once('error', failed);
    });
  }

  /**
   * One TLS 1.2 renegotiation started by this end (after `upgrade({ maxVersion: 'TLSv1.2' })`): true when it
   * completed, false when it failed, the connection closed, or nothing happened within `ms`.
   */
  renegotiate(ms = 5000): Promise<boolean> {
    const tls = this.sock as TLSSocket;
    return new Promise((resolve) => {
      if (this.closed || typeof tls.renegotiate !== 'function') return resolve(false);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        tls.off('close', gone);
        resolve(ok);
      };
      const gone = (): void => finish(false);
      const timer = setTimeout(gone, ms);
      tls.once('close', gone);
      if (!tls.renegotiate({ rejectUnauthorized: false }, (err) => finish(err === null || err === undefined)))
        finish(false);
    });
  }

  /** This end's port (to tell the server-side socket of this connection in /proc/net/tcp). */
  get localPort(): number {
    return this.raw.localPort ?? 0;
  }

  /** FIN on the TCP connection without a TLS close_notify. */
  rawEnd(): void {
    if (!this.raw.destroyed) this.raw.end();
  }

  /** Bytes straight onto the TCP connection, under TLS too (a forged record). */
  rawWrite(data: Buffer): void {
    if (!this.raw.destroyed) this.raw.write(data);
  }

  /** Writes and waits until the bytes are handed to the kernel (false if the server closed first). */
  write(data: string | Buffer): Promise<boolean> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.closed || this.sock.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (): void => {
        this.sock.off('close', done);
        resolve(!this.sock.destroyed);
      };
      this.sock.once('close', done);
      this.sock.write(b, (err) => {
        this.sock.off('close', done);
        resolve(err === undefined || err === null);
      });
    });
  }

  /** Writes without waiting (pipelining a burst). */
  send(data: string | Buffer): void {
    if (!this.sock.destroyed) this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** FIN: no more bytes from us; the server's replies still arrive. */
  end(): void {
    if (!this.sock.destroyed) this.sock.end();
  }

  /** RST of the TCP connection (under TLS too). */
  reset(): void {
    if (!this.raw.destroyed) this.raw.resetAndDestroy();
    this.sock.destroy();
  }

  destroy(): void {
    this.sock.destroy();
    this.raw.destroy();
  }

  /** One SMTP reply (all its lines, CRLF included), or how reading it ended: 'closed' or 'timeout'. */
  reply(ms = 15_000): Promise<string> {
    return this.until(() => {
      let at = 0;
      for (;;) {
        const nl = this.buf.indexOf('\n', at);
        if (nl < 0) return undefined;
        const line = this.buf.subarray(at, nl).toString('latin1');
        at = nl + 1;
        if (!/^\d{3}-/.test(line)) {
          const text = this.buf.subarray(0, at).toString('latin1');
          this.buf = this.buf.subarray(at);
          return text;
        }
      }
    }, ms);
  }

  /** The reply's code, or 0 when the connection closed or nothing came in time. */
  async code(ms = 15_000): Promise<number> {
    const r = await this.reply(ms);
    return r === 'closed' || r === 'timeout' ? 0 : Number(r.slice(0, 3));
  }

  /** One line (POP3), CRLF included, or 'closed' or 'timeout'. */
  line(ms = 15_000): Promise<string> {
    return this.until(() => {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) return undefined;
      const text = this.buf.subarray(0, nl + 1).toString('latin1');
      this.buf = this.buf.subarray(nl + 1);
      return text;
    }, ms);
  }

  /** A POP3 multi-line body up to and including the terminating `.` line. */
  multiline(ms = 15_000): Promise<string> {
    return this.until(() => {
      const end = this.buf.indexOf('\r\n.\r\n');
      const start = this.buf.subarray(0, 3).toString('latin1') === '.\r\n' ? 0 : end < 0 ? -1 : end + 2;
      if (start < 0) return undefined;
      const text = this.buf.subarray(0, start + 3).toString('latin1');
      this.buf = this.buf.subarray(start + 3);
      return text;
    }, ms);
  }

  /** Drops what has been received and not read. */
  skip(): void {
    this.buf = Buffer.alloc(0);
  }

  /** True when the server closed the connection within `ms` (whatever it sent meanwhile is kept). */
  async closes(ms = 10_000): Promise<boolean> {
    return (await this.until(() => undefined, ms)) === 'closed';
  }
}

/**
 * `n` random bytes a TLS server must refuse at once. Truly random bytes are sometimes the start of a valid
 * record: a second byte of 3 (the TLS major version) and a length above what follows, or a first byte with
 * the high bit set and a third of 1 (an SSLv2 hello), and then OpenSSL rightly waits for the rest until the
 * handshake timeout (60 s), about once in five hundred runs. The garbage cases ask for an immediate hang-up,
 * so the header can never be one: high bit clear, and a version byte that is not 3.
 */
export function tlsGarbage(n: number): Buffer {
  const b = randomBytes(n);
  b[0] = (b[0] ?? 0) & 0x7f;
  if (b[1] === 3) b[1] = 0;
  return b;
}

/** The first flight of a real TLS client (its ClientHello), for half handshakes. */
export async function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => {
      s.once('data', (c: Buffer) => {
        resolve(c);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({
        host: '127.0.0.1',
        port: (srv.address() as AddressInfo).port,
        rejectUnauthorized: false,
        servername: 'mail.hostile.test',
      });
      c.on('error', () => undefined);
      c.on('close', () => c.destroy());
    });
    srv.on('error', reject);
  });
}

/** Distinct loopback source addresses (127.1.x.y), so that per-address limits and login throttles stay per case. */
let nextAddr = 0;
export function freshLoopback(): string {
  nextAddr++;
  return `127.${1 + Math.floor(nextAddr / 65_000)}.${Math.floor((nextAddr % 65_000) / 250)}.${(nextAddr % 250) + 1}`;
}

/** Runs `jobs` with at most `n` at once; the first failure is thrown after all have settled. */
export async function parallel<T>(
  items: readonly T[],
  n: number,
  job: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        await job(items[i] as T, i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

/** The base64 of SASL PLAIN's `authzid NUL authcid NUL password`. */
export const plain = (user: string, password: string, authzid = ''): string =>
  Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64');

/**
 * The DATA rules of src/smtpd/README.md as an oracle, for a body `c` sent after `DATA` and followed by the
 * real `CRLF.CRLF`: a bare LF anywhere → 451 (and the connection closed), else a bare CR or a NUL → 554, else
 * 250. Only bodies in which that final terminator is the first `CRLF.CRLF` are asked about (`endsOnlyAtTheEnd`).
 */
export function dataVerdict(c: string): 250 | 451 | 554 {
  const s = `\r\n${c}\r\n`;
  for (let i = 2; i < s.length; i++) if (s[i] === '\n' && s[i - 1] !== '\r') return 451;
  for (let i = 2; i < s.length - 2; i++) if (s[i] === '\r' && s[i + 1] !== '\n') return 554;
  return c.includes('\0') ? 554 : 250;
}

/** True when the first `CRLF.CRLF` of the stream after DATA is the one the client appends after `c`. */
export const endsOnlyAtTheEnd = (c: string): boolean => `\r\n${c}\r\n.\r\n`.indexOf('\r\n.\r\n') === c.length + 2;

/** What an accepted body `c` becomes in the queue: CRLF → LF, a leading dot removed from each line (RFC 5321 4.5.2). */
export const decodedBody = (c: string): string =>
  `${c}\r\n`
    .split('\r\n')
    .slice(0, -1)
    .map((l) => (l.startsWith('.') ? l.slice(1) : l))
    .join('\n')
    .concat('\n');

/** Line lengths every battery tries: 1 byte to 10 MB. */
export const SIZES = [1, 512, 4096, 65_536, 1 << 20, 10 << 20];

/** One hostile form of a command: its name and how it is made from the verb and a normal argument. */
export type Variant = readonly [string, (verb: string, arg: string) => string];

/** A command as sent: CRLF added unless the line brings its own LF (the lf-only variants). */
export const asLine = (l: string): string => (l.endsWith('\n') ? l : `${l}\r\n`);

/**
 * Every variant of one command pipelined in one burst, then `tail` (RSET, QUIT) and FIN: the session must end within
 * 30 s. Returns what the server sent up to the line `tlsStart` matches (after it, TLS bytes may follow).
 */
export async function burst(
  w: Wire,
  variants: readonly Variant[],
  verb: string,
  arg: string,
  tail: string,
  tlsStart: RegExp,
  what: string,
): Promise<string> {
  w.send(`${variants.map(([, make]) => asLine(make(verb, arg))).join('')}${tail}`);
  w.end();
  assert.ok(await w.closes(30_000), `${what}: the session did not end within 30 s of the client's FIN`);
  return w.received.split(tlsStart)[0] ?? '';
}
