// A push over a connection the customer opened (ODMR's ATRN, AutoTURN's address): several held domains, one session.
import type { Socket } from 'node:net';
import { bounceConfigFrom } from '../bounce/index.js';
import type { Control } from '../control/index.js';
import type { NewMessage } from '../queue/index.js';
import { classifierFor, type TlsPolicy } from '../remote/index.js';
import { lockFile, type HeldLock } from './lock.js';
import { DEFAULT_LIFETIME, pushMaildir, type Connector, type PushResult } from './push.js';
import { writeLastPush, waiting } from './pusher.js';
import type { HeldDomain } from './registry.js';

/**
 * A Connector that hands out one socket once (the reversed ODMR connection, paused since the reversal so that no
 * byte of the customer's greeting is lost); later calls find it gone. It flows again once the SMTP client that
 * takes it has attached its listeners (they are attached as soon as the connector's promise settles).
 */
export function socketConnector(socket: Socket, ip: string): Connector {
  let used = false;
  return () => {
    if (used || socket.destroyed || !socket.readable)
      return Promise.resolve({ error: 'the customer connection is closed' });
    used = true;
    setImmediate(() => socket.resume());
    return Promise.resolve({ socket, ip });
  };
}

export interface TurnOptions {
  readonly control: Control;
  /** Bounces of permanent refusals go into quail's queue. */
  readonly inject: (m: NewMessage) => Promise<string>;
  readonly tls: TlsPolicy;
  readonly servername: string;
  readonly now?: () => number;
}

/** What a turn did: the domains pushed (their locks were free), those skipped (another push held the lock). */
export interface TurnResult {
  readonly pushed: readonly string[];
  readonly busy: readonly string[];
  readonly result?: PushResult;
}

/**
 * Pushes the held domains' Maildirs on one connection, each under its RELAYHOST lock taken without waiting (a
 * domain another push holds is skipped: never two transfers of one domain). Writes each pushed domain's LASTPUSH.
 */
export async function pushTurn(held: readonly HeldDomain[], connect: Connector, o: TurnOptions): Promise<TurnResult> {
  const now = o.now ?? ((): number => Math.floor(Date.now() / 1000));
  const locks: { h: HeldDomain; lock: HeldLock }[] = [];
  const busy: string[] = [];
  try {
    for (const h of held) {
      const lock = await lockFile(h.lockPath).catch(() => 'busy' as const);
      if (lock === 'busy') busy.push(h.domain);
      else locks.push({ h, lock });
    }
    const [first, ...rest] = locks.map((l) => l.h);
    if (first === undefined) return { pushed: [], busy };
    const result = await pushMaildir({
      dir: first.maildir,
      prefix: first.prefix,
      also: rest.map((h) => ({ dir: h.maildir, prefix: h.prefix })),
      connect,
      servername: o.servername,
      helo: o.control.single('helohost').value ?? o.control.me() ?? 'localhost',
      tls: o.tls,
      remoteMs: o.control.number('timeoutremote').value * 1000,
      classify: classifierFor(o.control.list('replyrules').value),
      lifetime: DEFAULT_LIFETIME,
      bounce: { config: bounceConfigFrom(o.control), inject: o.inject },
      now,
    });
    const count = (f: string): number => result.messages.filter((m) => m.fate === f).length;
    const summary = result.stopped ?? `${count('sent')} sent, ${count('bounced')} bounced, ${count('kept')} kept`;
    for (const { h } of locks)
      writeLastPush(h.home, { at: now(), reached: result.reached, result: summary, left: await waiting(h.maildir) });
    return { pushed: locks.map((l) => l.h.domain), busy, result };
  } finally {
    for (const { lock } of locks) await lock.close();
  }
}
