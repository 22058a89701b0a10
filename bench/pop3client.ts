// A minimal POP3 client for the bench: one command at a time, multi-line replies counted, not kept.
import { connect, type Socket } from 'node:net';

export interface Reply {
  readonly ok: boolean;
  /** The status line. */
  readonly first: string;
  /** Bytes of the multi-line body up to and including the terminating ".CRLF". */
  readonly bytes: number;
}

interface Waiter {
  readonly multi: boolean;
  status?: string;
  bytes: number;
  /** The last bytes of the body seen so far (starts as CRLF, so an empty body's "." line is found). */
  prev: Buffer;
  readonly resolve: (r: Reply) => void;
  readonly reject: (e: Error) => void;
}

const TERM = Buffer.from('\r\n.\r\n');
const CRLF = Buffer.from('\r\n');

export class Pop3Client {
  private pending: Buffer = Buffer.alloc(0);
  private waiter: Waiter | undefined;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      this.pending = this.pending.length === 0 ? c : Buffer.concat([this.pending, c]);
      this.drain();
    });
    const gone = (): void => this.waiter?.reject(new Error('connection closed'));
    sock.on('close', gone);
    sock.on('error', gone);
  }

  /** Connects and reads the greeting. */
  static async connect(port: number, host = '127.0.0.1'): Promise<Pop3Client> {
    const sock = connect({ port, host });
    sock.setNoDelay(true);
    const c = new Pop3Client(sock);
    const greeting = await c.read(false);
    if (!greeting.ok) throw new Error(`greeting: ${greeting.first}`);
    return c;
  }

  cmd(line: string, multi = false): Promise<Reply> {
    const r = this.read(multi);
    this.sock.write(`${line}\r\n`);
    return r;
  }

  close(): void {
    this.sock.destroy();
  }

  private read(multi: boolean): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.waiter = { multi, bytes: 0, prev: CRLF, resolve, reject };
      this.drain();
    });
  }

  private finish(w: Waiter): void {
    this.waiter = undefined;
    const first = w.status ?? '';
    w.resolve({ ok: first.startsWith('+OK'), first, bytes: w.bytes });
  }

  private drain(): void {
    const w = this.waiter;
    if (!w) return;
    if (w.status === undefined) {
      const i = this.pending.indexOf(CRLF);
      if (i < 0) return;
      w.status = this.pending.subarray(0, i).toString('latin1');
      this.pending = this.pending.subarray(i + 2);
      if (!w.multi || !w.status.startsWith('+OK')) return this.finish(w);
    }
    const hay = Buffer.concat([w.prev, this.pending]);
    const at = hay.indexOf(TERM);
    if (at < 0) {
      w.bytes += this.pending.length;
      w.prev = Buffer.from(hay.subarray(Math.max(0, hay.length - 4)));
      this.pending = Buffer.alloc(0);
      return;
    }
    const used = at + TERM.length - w.prev.length;
    w.bytes += used;
    this.pending = this.pending.subarray(used);
    this.finish(w);
  }
}
