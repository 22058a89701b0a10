// Lossy wake-ups across processes: one unix socket per watcher under queue/wake/ (docs/QUEUE.md "Wake-ups").
import { createConnection, createServer, type Server } from 'node:net';
import { chmodSync, chownSync, watch as fsWatch, unlinkSync, type FSWatcher } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { QueueId, WakeListener } from './types.js';
import { errCode, type Owner } from './durable.js';

const MAX_SUN_PATH = 107;
const MAX_LINE = 1024;
/** Sockets are connectable by the queue's owner and group (e.g. the unprivileged SMTP child), nobody else. */
const SOCKET_MODE = 0o660;

/** Parses one wake-up line: `new`, `flush` or `flush <domain>`. */
function parseWake(line: string): { what: 'new' | 'flush'; domain?: string } | undefined {
  const m = /^(new|flush)(?: ([^\s]{1,255}))?$/.exec(line.trim());
  if (!m) return undefined;
  const what = m[1] as 'new' | 'flush';
  return m[2] !== undefined && what === 'flush' ? { what, domain: m[2] } : { what };
}

export class Waker {
  private readonly listeners = new Set<WakeListener>();
  private server: Server | undefined;
  private fsWatcher: FSWatcher | undefined;
  private sockPath: string | undefined;
  private newInFlight = false;
  private newAgain = false;

  constructor(
    private readonly wakeDir: string,
    private readonly envDir: string,
    /** As root on a queue owned by another account: that account gets the socket. */
    private readonly owner?: Owner,
  ) {}

  watch(listener: WakeListener): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  private dispatch(what: 'new' | 'flush', domain?: string, id?: QueueId): void {
    for (const l of [...this.listeners]) {
      try {
        l(what, domain, id);
      } catch {
        // a listener's failure must not stop the others; the scheduler's scan covers for it
      }
    }
  }

  private start(): void {
    const path = join(this.wakeDir, `${process.pid}-${randomBytes(4).toString('hex')}.sock`);
    if (Buffer.byteLength(path) > MAX_SUN_PATH) {
      this.fallback();
      return;
    }
    const server = createServer((sock) => {
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const w = parseWake(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (w) this.dispatch(w.what, w.domain);
        }
        if (buf.length > MAX_LINE) sock.destroy();
      });
      sock.on('error', () => undefined);
    });
    server.on('error', () => {
      if (this.server === server) {
        this.server = undefined;
        this.sockPath = undefined;
        if (this.listeners.size > 0) this.fallback();
      }
    });
    server.listen(path, () => this.share(server, path));
    this.server = server;
    this.sockPath = path;
  }

  /** Gives the bound socket to the queue's owner with mode 0660, so its processes can connect to it. */
  private share(server: Server, path: string): void {
    if (this.server !== server) return;
    try {
      if (this.owner) chownSync(path, this.owner.uid, this.owner.gid);
      chmodSync(path, SOCKET_MODE);
    } catch {
      // left as bound: only this account can wake us then; the scheduler's periodic scan covers the rest
    }
  }

  /** Without a socket: notice new envelopes by watching env/ (no flush requests then). */
  private fallback(): void {
    try {
      this.fsWatcher = fsWatch(this.envDir, () => this.dispatch('new'));
      this.fsWatcher.on('error', () => undefined);
    } catch {
      // nothing more we can do: the scheduler's periodic scan remains
    }
  }

  private stop(): void {
    this.server?.close();
    if (this.sockPath) {
      try {
        unlinkSync(this.sockPath);
      } catch {
        // already gone
      }
    }
    this.fsWatcher?.close();
    this.server = undefined;
    this.sockPath = undefined;
    this.fsWatcher = undefined;
  }

  close(): void {
    this.listeners.clear();
    this.stop();
  }

  /** A wake-up for this process's own watchers only (no socket): the sender knows they are here. */
  wakeHere(what: 'new' | 'flush', domain?: string, id?: QueueId): void {
    this.dispatch(what, domain, id);
  }

  /** Sends one line to every watcher; resolves with how many took it. Stale sockets are unlinked. */
  async send(what: 'new' | 'flush', domain?: string): Promise<number> {
    const line = what === 'flush' && domain ? `flush ${domain}\n` : `${what}\n`;
    let names: string[];
    try {
      names = await readdir(this.wakeDir);
    } catch {
      return 0;
    }
    const sent = await Promise.all(
      names.filter((n) => n.endsWith('.sock')).map((n) => sendOne(join(this.wakeDir, n), line)),
    );
    return sent.filter(Boolean).length;
  }

  /** A 'new' wake-up, coalesced: while one is being sent, further requests collapse into one more. */
  notifyNew(): void {
    if (this.newInFlight) {
      this.newAgain = true;
      return;
    }
    this.newInFlight = true;
    void this.send('new')
      .catch(() => 0)
      .then(() => {
        this.newInFlight = false;
        if (this.newAgain) {
          this.newAgain = false;
          this.notifyNew();
        }
      });
  }
}

function sendOne(path: string, line: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    sock.setTimeout(2000, () => sock.destroy());
    sock.on('connect', () => {
      sock.end(line, () => resolve(true));
    });
    sock.on('error', (err) => {
      if (errCode(err) === 'ECONNREFUSED') unlink(path).catch(() => undefined);
      resolve(false);
    });
    sock.on('close', () => resolve(false));
  });
}
