// The four SMTP sinks of FORMAT.md section 2 on 127.0.0.1:42525-42528, with the oracle's exact replies, recording.
import { createServer, type Server, type Socket } from 'node:net';
import { heloArgument } from '../normalise.js';

const SINK_PORTS = [42525, 42526, 42527, 42528] as const;

/** One transaction a sink received (FORMAT.md 3.2 remote[]), before placeholder/token normalisation. */
export interface SinkTransaction {
  readonly relay: string;
  readonly helo: string;
  readonly mail_from_raw: string;
  readonly mail_from: string;
  readonly rcpt_to: string[];
  readonly rcpt_refused: Array<{ addr: string; reply: string }>;
  readonly rcpt_raw: string[];
  /** After dot-unstuffing, CRLF → LF (latin1 text). */
  readonly data: string;
  readonly data_had_crlf: boolean;
}

/** Text between the first `<` and the last `>` of a MAIL/RCPT line. */
const bracketed = (line: string): string => {
  const a = line.indexOf('<');
  const b = line.lastIndexOf('>');
  return a >= 0 && b > a ? line.slice(a + 1, b) : line.replace(/^[^:]*:/, '').trim();
};

/** The local part of a (possibly quoted) address, unquoted, for the reject550/defer451 rules. */
const localOf = (addr: string): string => {
  const at = addr.lastIndexOf('@');
  const local = at < 0 ? addr : addr.slice(0, at);
  return local.startsWith('"') ? local.slice(1) : local;
};

interface Txn {
  helo: string;
  mailRaw?: string;
  rcptTo: string[];
  refused: Array<{ addr: string; reply: string }>;
  rcptRaw: string[];
}

export class Sinks {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly seen = new Map<number, SinkTransaction[]>();

  /** Starts all four sinks; fails if a port is taken (another run in progress?). */
  static async start(ports: readonly number[] = SINK_PORTS): Promise<Sinks> {
    const s = new Sinks();
    try {
      for (const port of ports) await s.listen(port);
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  /** Every transaction that completed DATA, in port order then arrival order. */
  transactions(): SinkTransaction[] {
    return [...this.seen.keys()].sort((a, b) => a - b).flatMap((p) => this.seen.get(p) ?? []);
  }

  async close(): Promise<void> {
    for (const sock of this.sockets) sock.destroy();
    await Promise.all(this.servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }

  /**
   * The oracle's fixed ports lie inside Linux's ephemeral range (32768-60999): a socket another program got from
   * the kernel (a test's server on port 0, a client's local port) can hold one for a while. Such a port is waited
   * for, up to 60 s, then the error says who to suspect.
   */
  private async listen(port: number): Promise<void> {
    this.seen.set(port, []);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const server = createServer((sock) => this.session(sock, port));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
        this.servers.push(server);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) {
          throw new Error(
            `sink 127.0.0.1:${port}: ${err instanceof Error ? err.message : String(err)}; after 60 s still taken (another conformance run, or a lingering process: ss -ltnp sport = :${port})`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private session(sock: Socket, port: number): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setEncoding('latin1');
    const reply = (text: string): void => {
      if (!sock.destroyed) sock.write(`${text}\r\n`);
    };
    let buf = '';
    let inData = false;
    let dataLines: string[] = [];
    let allCrlf = true;
    let txn: Txn = { helo: '', rcptTo: [], refused: [], rcptRaw: [] };
    const reset = (): void => {
      txn = { helo: txn.helo, rcptTo: [], refused: [], rcptRaw: [] };
    };
    const onLine = (raw: string, crlf: boolean): void => {
      if (inData) {
        if (!crlf) allCrlf = false;
        if (raw === '.') {
          inData = false;
          const data = dataLines.map((l) => `${l}\n`).join('');
          this.seen.get(port)?.push({
            relay: `127.0.0.1:${port}`,
            helo: txn.helo,
            mail_from_raw: txn.mailRaw ?? '',
            mail_from: bracketed(txn.mailRaw ?? ''),
            rcpt_to: txn.rcptTo,
            rcpt_refused: txn.refused,
            rcpt_raw: txn.rcptRaw,
            data,
            data_had_crlf: allCrlf,
          });
          reset();
          reply('250 ok sink accepted');
          return;
        }
        dataLines.push(raw.startsWith('.') ? raw.slice(1) : raw);
        return;
      }
      const verb = raw.slice(0, 4).toUpperCase();
      if (verb === 'HELO' || verb === 'EHLO') {
        txn.helo = heloArgument(raw);
        reset();
        reply(`250 sink${port}`);
      } else if (verb === 'MAIL') {
        reset();
        txn.mailRaw = raw;
        reply('250 ok');
      } else if (verb === 'RCPT') {
        const addr = bracketed(raw);
        txn.rcptRaw.push(raw);
        const local = localOf(addr);
        const refusal = local.startsWith('reject550')
          ? '550 sink: no such user here'
          : local.startsWith('defer451')
            ? '451 sink: mailbox busy, try later'
            : undefined;
        if (refusal === undefined) {
          txn.rcptTo.push(addr);
          reply('250 ok');
        } else {
          txn.refused.push({ addr, reply: refusal });
          reply(refusal);
        }
      } else if (verb === 'DATA') {
        inData = true;
        dataLines = [];
        allCrlf = true;
        reply('354 go ahead');
      } else if (verb === 'QUIT') {
        reply('221 bye');
        sock.end();
      } else if (verb === 'RSET') {
        reset();
        reply('250 ok');
      } else reply('250 ok');
    };
    reply(`220 sink${port} ESMTP`);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const crlf = line.endsWith('\r');
        onLine(crlf ? line.slice(0, -1) : line, crlf);
      }
    });
  }
}
