// One listening TCP socket as tcpserver runs it: connection limits, per-address counts, a refusal, the hand-over of
// sockets accepted elsewhere, and the graceful close; the protocol (SMTP, POP3) supplies only the session.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ConnectionLimits } from '../throttle/index.js';
import { DescriptorGuard } from './descriptors.js';

/** A connection the listener will not serve: why (for the log) and what the client is told (undefined: closed). */
export interface Refusal {
  readonly refuse: string | undefined;
}

/** A connection being served: settles when the session is over. */
export interface Served {
  readonly done: Promise<unknown>;
  /** At close: end the session now if it can be ended safely (POP3: one waiting for a command); else it runs on. */
  readonly shutdown?: () => void;
}

export interface TcpServerOptions {
  /** Connections at once, and from one client address (tcpserver's -c, per address). */
  readonly maxConnections: number;
  readonly maxPerIp: number;
  /** Sockets stay paused until the session reads (SMTP reads one command line at a time); false: flowing. */
  readonly paused: boolean;
  /** Half-open: a client may send everything and shut its side; replies still go out (SMTP pipelining). */
  readonly halfOpen: boolean;
  /** Nagle off (many small replies, as POP3's). */
  readonly noDelay?: boolean;
  /** A connection over maxconn/maxperip: log it; the text the client is told (undefined: closed). */
  readonly tooMany: (ip: string, why: 'maxconn' | 'maxperip') => string | undefined;
  /** An admitted connection: its session, or a refusal (tcprules deny, unreadable rules), already logged. */
  readonly open: (socket: Socket, ip: string) => Served | Refusal;
  /**
   * A failed accept, or an `open` that threw: the server keeps listening. Running out of descriptors (EMFILE, or a
   * connection accepted close to the limit and closed) comes here too, at most once a minute, saying what to raise.
   */
  readonly acceptFailed: (err: Error) => void;
  /**
   * Another process counts the connections (several processes accepting on one socket: src/start's privchild.ts):
   * each accepted connection waits, paused, for its answer before `open`; maxConnections and maxPerIp are not used.
   */
  readonly admit?: (ip: string) => Promise<Admitted>;
}

/** What the process that counts says of a connection: served (`done` counts it out, once), or refused with a text. */
export type Admitted =
  { readonly ok: true; readonly done: () => void } | { readonly ok: false; readonly refuse: string | undefined };

/** `::ffff:1.2.3.4` → `1.2.3.4`; no address → `unknown`. */
export const plainIp = (a: string | undefined): string => (a ?? 'unknown').replace(/^::ffff:(?=\d+\.)/, '');

/** Tells a refused client `text` (read and drop what it sends, so closing does not reset the reply away); cut after 10 s. */
export function refuseSocket(socket: Socket, text: string | undefined): void {
  if (text === undefined) {
    socket.destroy();
    return;
  }
  socket.resume();
  socket.end(text);
  setTimeout(() => socket.destroy(), 10_000).unref();
}

export class TcpServer {
  private readonly server: Server;
  private readonly limits: ConnectionLimits;
  private readonly sessions = new Map<Socket, Served>();
  /** Connections waiting for their admission (admit): destroyed at close. */
  private readonly asking = new Set<Socket>();
  private closing = false;
  private readonly descriptors: DescriptorGuard;

  constructor(private readonly o: TcpServerOptions) {
    this.limits = new ConnectionLimits(o.maxConnections, o.maxPerIp);
    this.descriptors = new DescriptorGuard((text) => o.acceptFailed(new Error(text)));
    this.server = createServer({ allowHalfOpen: o.halfOpen, pauseOnConnect: o.paused }, (socket) =>
      this.accept(socket),
    );
    // A failed accept (EMFILE...) is an 'error' on the server, which keeps listening; unhandled it would end the process.
    this.server.on('error', (err) => {
      if (!this.descriptors.acceptError(err)) o.acceptFailed(err);
    });
  }

  /**
   * Binds host:port, or takes over a socket another process bound and passed (`handle`: a Server, or the bound handle
   * of bindShared, on which this process then listens and accepts while the binder keeps its own descriptor).
   */
  listen(port: number, host: string): Promise<AddressInfo>;
  listen(handle: object): Promise<AddressInfo>;
  listen(portOrHandle: number | object, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      };
      if (typeof portOrHandle === 'number') this.server.listen(portOrHandle, host, done);
      else this.server.listen(portOrHandle, done);
    });
  }

  /**
   * Serves a connection accepted elsewhere (a privileged parent's socket passed over IPC, paused and unread). Such a
   * socket is made without the listener's options: they are set here as the server's own sockets have them.
   */
  adopt(socket: Socket): void {
    if (this.o.halfOpen) socket.allowHalfOpen = true;
    if (this.o.paused) socket.pause();
    this.accept(socket);
    if (!this.o.paused && !socket.destroyed) socket.resume();
  }

  get address(): AddressInfo | null {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  /** Sessions being served. */
  get connections(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting; sessions that can end safely are ended (`shutdown`), the others get graceMs to finish, then their
   * sockets are cut (never mid-commit: SMTP's 250 follows its commit; a cut POP3 session deletes nothing).
   */
  async close(graceMs = Infinity): Promise<void> {
    this.closing = true;
    for (const socket of this.asking) socket.destroy();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sessions.values()) s.shutdown?.();
    const all = Promise.allSettled([...this.sessions.values()].map((s) => s.done));
    if (graceMs !== Infinity) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      for (const socket of this.sessions.keys()) socket.destroy();
    }
    await all;
    await closed;
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined); // resets are normal; the session sees EOF
    if (!this.descriptors.admit(socket)) return;
    const ip = plainIp(socket.remoteAddress);
    if (this.o.noDelay) socket.setNoDelay(true);
    if (this.o.admit) return this.askFirst(socket, ip, this.o.admit);
    const admitted = this.limits.admit(ip);
    if (admitted !== 'ok') return refuseSocket(socket, this.o.tooMany(ip, admitted));
    this.serve(socket, ip, () => this.limits.release(ip));
  }

  /** The connection waits (paused, unread) for the counting process's answer; gone meanwhile, it is counted out. */
  private askFirst(socket: Socket, ip: string, admit: (ip: string) => Promise<Admitted>): void {
    this.asking.add(socket);
    admit(ip).then(
      (a) => {
        this.asking.delete(socket);
        if (!a.ok) return refuseSocket(socket, a.refuse);
        if (socket.destroyed || this.closing) {
          socket.destroy();
          return a.done();
        }
        this.serve(socket, ip, a.done);
      },
      () => {
        this.asking.delete(socket);
        socket.destroy();
      },
    );
  }

  /** An admitted connection: its session, counted out (`release`, once) when it is over or refused by `open`. */
  private serve(socket: Socket, ip: string, release: () => void): void {
    let served: Served | Refusal;
    try {
      served = this.o.open(socket, ip);
    } catch (err) {
      // A protocol's open() that throws loses this connection only: thrown out of the 'connection' handler it would
      // end the process and every session in it.
      release();
      socket.destroy();
      this.o.acceptFailed(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!('done' in served)) {
      release();
      return refuseSocket(socket, served.refuse);
    }
    this.sessions.set(socket, served);
    void served.done
      .then(
        () => undefined,
        () => undefined, // the protocol logs its own session errors
      )
      .finally(() => {
        this.sessions.delete(socket);
        release();
      });
  }
}
