// What the unprivileged SMTP, POP3 and send child processes share: dropping root, how they stop and reload, crashes.
import type { Socket } from 'node:net';
import { errText, ignoreUserSignals } from '../core/index.js';
import type { Admitted } from '../tcpserver/index.js';
// the pool itself, not the directory's index: the send and metrics children would load SQLite and PostgreSQL's drivers
import { cryptThreads } from '../directory/crypt-pool.js';
import { RemoteThrottle } from '../throttle/index.js';
import type { FromServiceChild, ToServiceChild } from './privchild.js';

/** Root → the account: supplementary groups, gid, then uid (real, effective and saved). false if that failed. */
function dropPrivileges(uid: number, gid: number): boolean {
  if (process.getuid?.() !== 0) return process.getuid?.() === uid;
  process.setgroups?.([gid]);
  process.setgid?.(gid);
  process.setuid?.(uid);
  return process.getuid?.() === uid && process.geteuid?.() === uid && process.getgid?.() === gid;
}

/** Becomes uid/gid before touching anything; on failure reports `fatal`, leaves with exit 100 and returns false. */
export function becomeAccount(uid: number, gid: number, fatal: (error: string) => void): boolean {
  try {
    if (dropPrivileges(uid, gid)) return true;
    fatal(`cannot switch to uid ${uid} gid ${gid}: still uid ${process.getuid?.() ?? '?'}`);
  } catch (err) {
    fatal(`cannot switch to uid ${uid} gid ${gid}: ${errText(err)}`);
  }
  process.exitCode = 100;
  process.disconnect?.();
  return false;
}

/**
 * The parent gone (killed): nobody would restart or stop us, so finish quickly. A signal sent to the whole
 * process group (Ctrl-C, SIGTERM): the parent asks for the same, so stop with the usual grace. SIGHUP: reload.
 */
function onLifecycleSignals(stop: (graceMs: number) => Promise<void>, reload: () => void): void {
  process.on('disconnect', () => {
    // sessions get 1 s; whatever a close step still waits for after 5 s does not keep an orphan alive
    setTimeout(() => process.exit(0), 5000).unref();
    void stop(1000);
  });
  process.on('SIGTERM', () => void stop(10_000));
  process.on('SIGINT', () => void stop(10_000));
  process.on('SIGHUP', reload);
}

/** One listener as a service child serves it: connections are handed over by the root parent. */
export interface ServedListener {
  adopt(socket: Socket): void;
  /**
   * The server speaks first, in plain text (an SMTP, POP3 or ODMR greeting). The parent keeps its copy of an adopted
   * connection until the first byte is written (or the socket closes), so a child that dies before then has lost
   * nothing the client saw, and the connection goes to the next child (privchild.ts). Without it (HTTP, implicit TLS:
   * the client speaks first, and what the child read is gone) the parent lets go at once.
   */
  readonly greets?: boolean;
  /**
   * The client speaks first in plain HTTP: the parent keeps its copy until the first byte of the answer too, but what
   * the child read is gone with it, so if the child dies before answering the parent says 503 (try again) itself.
   */
  readonly http?: boolean;
  /**
   * Listen and accept on the socket root bound and sent (src/tcpserver's bindShared), when this is the service's only
   * process: each connection is then this process's from its accept on, with no hand-over through root.
   */
  listenOn?(handle: object): Promise<unknown>;
  /** Stop taking connections; sessions get graceMs to finish. */
  close(graceMs: number): Promise<void>;
  /** Root, which counts the connections of all the service's children, says the listener is under stress or not. */
  setStress?(on: boolean): void;
}

export interface ServiceChildMain<Spec> {
  readonly uid: number;
  readonly gid: number;
  /** After dropping privileges: open what the service needs (a thrown error is reported as fatal, exit 100). */
  readonly open: () => Promise<void>;
  /**
   * The listeners for the specs, in order (made together: POP3's share one Maildir lock table). `accepts`: this process
   * accepts on the listening sockets itself (`listen` follows) and so counts its connections (maxconn, maxperip) and
   * its stress mode itself; false: root admits every connection and says when stress mode changes.
   */
  readonly listeners: (
    specs: readonly Spec[],
    accepts: boolean,
    /**
     * Several processes accept on the same sockets and root counts their connections: each accepted one is admitted by
     * asking root first (listener index, client address). Absent with `accepts`: this process counts its own.
     */
    admit?: (index: number, ip: string) => Promise<Admitted>,
  ) => ServedListener[];
  readonly reload: () => void;
  /** After the listeners closed: close what open() opened. */
  readonly close: () => Promise<void>;
  /**
   * Root admits the connections (maxconn, maxperip across all the service's children): it is told when each handed-over
   * connection's session is over (batched, log-batch.ts). Without it root does not count.
   */
  readonly closed?: (id: number) => void;
  /** What a sibling child shared (its `share` message, relayed by root): the ETRNs and AutoTURN pushes it accepted (AUTH failures go to root's table: login-hub.ts). */
  readonly onShare?: (body: unknown) => void;
}

/**
 * The child's side of privchild.ts: drop to the account, open, say `ready`; on `serve` make the listeners and say
 * `serving`; serve each adopted socket; `reload`, `stop`. Everything else is the service's own.
 */
export async function runServiceChild<Spec>(
  m: ServiceChildMain<Spec>,
  send: (msg: FromServiceChild<never>) => void,
): Promise<void> {
  ignoreUserSignals(); // no debugger on SIGUSR1 (core/signals.ts)
  if (!becomeAccount(m.uid, m.gid, (error) => send({ type: 'fatal', error }))) return;
  // a login's crypt(3) hash (an imported vpopmail password) on threads, not on the sessions' event loop (crypt-pool.ts)
  cryptThreads.use();
  try {
    await m.open();
  } catch (err) {
    send({ type: 'fatal', error: errText(err) });
    process.exitCode = 100;
    process.disconnect?.();
    return;
  }
  const listeners = new Map<number, ServedListener>();
  let stopping: Promise<void> | undefined;
  /** Admissions asked of root (`admit`), by ask number, until its `admission` answer. */
  const asked = new Map<number, (a: Admitted) => void>();
  let asks = 0;
  const admit = (index: number, ip: string): Promise<Admitted> =>
    new Promise((resolve) => {
      if (stopping !== undefined || !process.connected) return resolve({ ok: false, refuse: undefined });
      const ask = ++asks;
      asked.set(ask, resolve);
      send({ type: 'admit', index, ask, ip });
    });
  const stop = (graceMs: number): Promise<void> => {
    // no answer comes once the parent is gone or stops us: the connections waiting for one are closed
    for (const resolve of asked.values()) resolve({ ok: false, refuse: undefined });
    asked.clear();
    stopping ??= (async () => {
      await Promise.all([...listeners.values()].map((l) => l.close(graceMs)));
      await m.close();
      process.disconnect?.();
      process.exit(0);
    })();
    return stopping;
  };
  process.on('message', (msg: ToServiceChild<Spec>, handle: Socket | undefined) => {
    switch (msg.type) {
      case 'serve':
        try {
          const made = m.listeners(msg.listeners, msg.accepts === true, msg.admits === true ? admit : undefined);
          for (const [i, l] of made.entries()) listeners.set(i, l);
          send({ type: 'serving' });
        } catch (err) {
          send({ type: 'fatal', error: errText(err) });
        }
        break;
      case 'listen': {
        const l = listeners.get(msg.index);
        if (l?.listenOn === undefined || handle === undefined) {
          send({ type: 'fatal', error: `listener ${msg.index} cannot take a listening socket` });
          break;
        }
        l.listenOn(handle).then(
          () => send({ type: 'listening', index: msg.index }),
          (err: unknown) => send({ type: 'fatal', error: `cannot listen: ${errText(err)}` }),
        );
        break;
      }
      case 'adopt': {
        // `adopted`: we hold our own descriptor now and the parent closes its copy
        const adopted = (): void => send({ type: 'adopted', id: msg.id });
        const l = listeners.get(msg.index);
        // `closed` (root counts the connection out) must follow `adopted`: registered after beforeFirstOutput's own
        // close listener, so a client gone before its greeting is adopted first, then closed (root also copes)
        const closedAfter = (): void => {
          const closed = m.closed;
          if (closed === undefined) return;
          if (handle && !handle.destroyed) handle.once('close', () => closed(msg.id));
          else closed(msg.id);
        };
        if (handle && l && stopping === undefined) {
          if (l.greets === true || l.http === true) beforeFirstOutput(handle, adopted);
          else adopted();
          closedAfter();
          l.adopt(handle);
        } else {
          adopted();
          closedAfter();
          handle?.destroy();
        }
        break;
      }
      case 'admission': {
        const resolve = asked.get(msg.ask);
        asked.delete(msg.ask);
        const { id } = msg;
        const closed = m.closed;
        if (id === undefined) resolve?.({ ok: false, refuse: msg.refuse });
        else if (resolve === undefined)
          closed?.(id); // asked before a stop: counted out at once
        else resolve({ ok: true, done: () => closed?.(id) });
        break;
      }
      case 'stress':
        listeners.get(msg.index)?.setStress?.(msg.on);
        break;
      case 'reload':
        m.reload();
        break;
      case 'stop':
        void stop(msg.graceMs);
        break;
      case 'share':
        m.onShare?.(msg.body);
        break;
    }
  });
  onLifecycleSignals(stop, m.reload);
  send({ type: 'ready', uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 });
}

/**
 * Calls `first` once, just before the first write or end on `socket`, or when it closes without one. A greeting
 * written by a child that then died must not be written again by the next one, so the parent lets go of its copy
 * right before it; a child killed any earlier leaves the connection with the parent, unanswered and whole.
 */
function beforeFirstOutput(socket: Socket, first: () => void): void {
  const write = socket.write.bind(socket);
  const end = socket.end.bind(socket);
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    socket.write = write;
    socket.end = end;
    first();
  };
  socket.write = ((...args: Parameters<Socket['write']>) => {
    once();
    return write(...args);
  }) as Socket['write'];
  socket.end = ((...args: Parameters<Socket['end']>) => {
    once();
    return end(...args);
  }) as Socket['end'];
  socket.once('close', once);
}

/**
 * The failed-login table as a service child that checks passwords uses it: root's one table for SMTP AUTH, POP3, ODMR
 * and the web admin (login-hub.ts), asked only for attempts that may be slowed and told every verdict.
 */
export function rootThrottle(send: (m: FromServiceChild<never>) => void): RemoteThrottle {
  const throttle = new RemoteThrottle((body) => {
    if (!process.connected) return false;
    send({ type: 'throttle', body });
    return true;
  });
  process.on('message', (m: { readonly type?: unknown; readonly body?: unknown }) => {
    if (m.type === 'throttle') throttle.heard(m.body);
  });
  return throttle;
}

/** What a child tells its parent before it dies of an exception nobody caught. */
export interface CrashReport {
  readonly type: 'crash';
  readonly error: string;
  readonly stack: string;
}

/**
 * An exception nobody caught, or a rejection nobody handled: the parent is sent its message and stack (it logs them
 * and starts a new process), then this one leaves with exit 70 — at once if the parent is gone, else once the report
 * is out (2 s at most).
 */
export function reportCrashes(): void {
  const crashed = (err: unknown): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    setTimeout(() => process.exit(70), 2000);
    if (!process.connected || process.send === undefined) process.exit(70);
    process.send({ type: 'crash', error: e.message, stack: e.stack ?? '' } satisfies CrashReport, () =>
      process.exit(70),
    );
  };
  process.on('uncaughtException', crashed);
  process.on('unhandledRejection', crashed);
}
