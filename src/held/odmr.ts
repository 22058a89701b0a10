// ODMR (RFC 2645) on port 366: the customer authenticates, says ATRN, and the roles reverse on the same connection.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { asciiLower, errText, logsafe } from '../core/index.js';
import { acceptTls } from '../tcpserver/index.js';
import { countedAs, MAX_AUTH_FAILURES, type LoginAttempts } from '../throttle/index.js';

/** Longest command line taken (RFC 5321 4.5.3.1.4 allows 512; AUTH responses may be longer). */
const MAX_LINE = 4096;
/** How much of a refused login the log keeps (an address is at most 254 bytes; the line may hold 4096). */
const MAX_LOGGED = 256;
/** Bad commands before the session is ended (421). */
const MAX_ERRORS = 10;
/** How long a closing session still reads what the client sends (so its last reply is not lost to a reset). */
const DRAIN_MS = 2000;
/**
 * Bytes of unread commands held before the socket is paused: a client pipelining a flood waits in TCP, not in our
 * memory.
 */
const HIGH_WATER = 64 * 1024;
/** Longest wait for the TLS handshake after STARTTLS (as smtpd's and pop3d's), or the idle time if shorter. */
const HANDSHAKE_MS = 60_000;
/** A line longer than MAX_LINE (its bytes are dropped). */
const LONG: unique symbol = Symbol('long');
/** The client went away in the middle of an AUTH exchange. */
const GONE: unique symbol = Symbol('gone');
type Line = string | typeof LONG | null;

/** What the session needs from quail: password checks, held domains and the push itself. */
export interface OdmrDeps {
  readonly hostname: string;
  /** PLAIN and LOGIN: the canonical login when the password is right (the directory), else null. */
  checkPassword(login: string, password: string): Promise<string | null>;
  /** CRAM-MD5: the shared secret of an ATRN login (quail held add --atrn-secret-file), or null. */
  cramSecret(login: string): Promise<string | null>;
  /** The held domains whose ATRN login is `login` (lowercase names). */
  domainsOf(login: string): Promise<readonly string[]>;
  /** Messages waiting for a held domain. */
  waiting(domain: string): Promise<number>;
  /**
   * The roles have reversed: push the domains' held mail over `socket` as an SMTP client and QUIT. 'busy': every
   * domain's lock was held by another push (nothing sent).
   */
  push(domains: readonly string[], socket: Socket, tls: boolean): Promise<'done' | 'busy'>;
  /** STARTTLS: control/servercert.pem's context, or undefined (not offered). */
  readonly tls?: SecureContext | undefined;
  /** AUTH without TLS (the client's address is a loopback one, or the listener allows it). */
  plainAuthOk(ip: string): boolean;
  /**
   * The failed-login slowdown (src/throttle, the policy of smtpd's AUTH and pop3d's logins): the caller keeps one
   * table for its sessions (quail start: one for SMTP, POP3, ODMR and the web admin).
   */
  readonly throttle: LoginAttempts;
  /** The name the throttle counts a login under (alias domains resolved); without it, the login lowercased. */
  throttleKey?(login: string): Promise<string>;
  log(event: 'odmr.session' | 'odmr.atrn' | 'odmr.auth', fields: Readonly<Record<string, unknown>>): void;
  /** Idle time before the session is ended (ms). */
  readonly idleMs: number;
}

/** `ATRN` arguments: none (every domain of the login), or `dom1,dom2`; null when malformed. */
export function parseAtrn(arg: string): string[] | null {
  const a = arg.trim();
  if (a === '') return [];
  const parts = a.split(',').map((x) => asciiLower(x.trim()));
  return parts.every((p) => /^[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?$/.test(p) && !p.includes('..')) ? parts : null;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
function unb64(s: string): string | null {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) return null;
  return Buffer.from(t, 'base64').toString('utf8');
}

/** A line reader with a length limit; `next()` resolves with a line, or null when the client is gone or idle. */
class Lines {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: ((l: Line) => void) | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  /** In the middle of a line past MAX_LINE: its bytes are dropped up to its end, then LONG is given once. */
  private skipping = false;
  private pendingLong = false;
  private readonly onData = (chunk: Buffer): void => {
    let c = chunk;
    if (this.skipping) {
      const i = c.indexOf(10);
      if (i < 0) return;
      c = c.subarray(i + 1);
      this.skipping = false;
      this.pendingLong = true;
    }
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    if (this.buf.length > MAX_LINE && this.buf.indexOf(10) < 0) {
      this.buf = Buffer.alloc(0);
      this.skipping = true;
    }
    if (this.buf.length > HIGH_WATER) this.sock.pause();
    this.pump();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.pump();
  };

  constructor(
    private sock: Socket,
    private readonly idleMs: number,
  ) {
    this.attach();
  }

  private attach(): void {
    this.sock.on('data', this.onData);
    this.sock.on('end', this.onEnd);
    this.sock.on('close', this.onEnd);
    this.sock.on('error', this.onEnd);
  }

  /** Stops reading (for STARTTLS or the reversal); unread bytes are given back to the socket. */
  detach(): Buffer {
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onEnd);
    this.sock.off('error', this.onEnd);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** After STARTTLS: read the TLS socket instead. */
  swap(sock: Socket): void {
    this.detach();
    this.sock = sock;
    this.attach();
  }

  private pump(): void {
    if (!this.waiter) return;
    if (this.pendingLong) {
      this.pendingLong = false;
      this.settle(LONG);
      return;
    }
    const i = this.buf.indexOf(10);
    if (i >= 0) {
      const line = this.buf.subarray(0, i).toString('latin1').replace(/\r$/, '');
      this.buf = this.buf.subarray(i + 1);
      if (this.buf.length <= HIGH_WATER && this.sock.isPaused()) this.sock.resume();
      this.settle(i > MAX_LINE ? LONG : line);
    } else if (this.ended) this.settle(null);
  }

  private settle(v: Line): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (this.timer) clearTimeout(this.timer);
    w?.(v);
  }

  next(): Promise<Line> {
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.timer = setTimeout(() => this.settle(null), this.idleMs);
      this.pump();
    });
  }
}

/**
 * One ODMR session (RFC 2645 section 4): greeting, EHLO, optional STARTTLS, AUTH (PLAIN, LOGIN, CRAM-MD5), then
 * ATRN. On `250 OK now reversing the connection` quail is the SMTP client on the same socket. Never throws; every
 * socket error ends the session.
 */
export async function serveOdmr(socket: Socket, ip: string, d: OdmrDeps): Promise<void> {
  let sock: Socket = socket;
  socket.on('error', () => undefined);
  const write = (s: string): void => {
    if (!sock.destroyed && sock.writable) sock.write(`${s}\r\n`);
  };
  const lines = new Lines(sock, d.idleMs);
  let login: string | undefined;
  let ehlo = false;
  let tls = false;
  let errors = 0;
  let authFailures = 0;
  let end = 'quit';
  const bad = (reply: string): boolean => {
    if (++errors < MAX_ERRORS) {
      write(reply);
      return false;
    }
    write(`421 4.7.0 ${d.hostname} too many errors, closing`);
    end = 'errors';
    return true;
  };
  write(`220 ${d.hostname} ESMTP on-demand mail relay (RFC 2645) ready`);
  try {
    for (;;) {
      // replies a client never reads must not pile up in memory: past the high-water mark, wait for it to read them
      if (sock.writableNeedDrain && !(await drained(sock, d.idleMs))) {
        end = 'not-reading';
        sock.destroy();
        break;
      }
      const line = await lines.next();
      if (line === null) {
        end = sock.destroyed || !sock.readable ? 'gone' : 'idle';
        if (end === 'idle') write(`421 4.4.2 ${d.hostname} idle too long, closing`);
        break;
      }
      if (line === LONG) {
        if (bad('500 5.5.2 line too long')) break;
        continue;
      }
      const sp = line.indexOf(' ');
      const verb = asciiLower(sp < 0 ? line : line.slice(0, sp));
      const arg = sp < 0 ? '' : line.slice(sp + 1);
      if (verb === 'quit') {
        write(`221 2.0.0 ${d.hostname} closing`);
        break;
      }
      if (verb === 'noop') write('250 2.0.0 OK');
      else if (verb === 'rset') write('250 2.0.0 OK');
      else if (verb === 'ehlo') {
        if (arg.trim() === '') {
          if (bad('501 5.5.4 EHLO needs your host name')) break;
          continue;
        }
        ehlo = true;
        const ext = [
          ...(d.tls !== undefined && !tls ? ['STARTTLS'] : []),
          ...(tls || d.plainAuthOk(ip) ? ['AUTH CRAM-MD5 PLAIN LOGIN'] : ['AUTH CRAM-MD5']),
          'ATRN',
        ];
        const all = [d.hostname, ...ext];
        write(all.map((l, i) => `${i === all.length - 1 ? '250 ' : '250-'}${l}`).join('\r\n'));
      } else if (verb === 'helo') {
        if (bad('502 5.5.1 ODMR needs EHLO (RFC 2645 section 4.1)')) break;
      } else if (verb === 'starttls') {
        if (d.tls === undefined || tls) {
          if (bad('502 5.5.1 STARTTLS not available')) break;
          continue;
        }
        write('220 2.0.0 ready to start TLS');
        lines.detach(); // what the client pipelined after STARTTLS is dropped (RFC 3207 4.2)
        if (sock.isPaused()) sock.resume(); // paused at the high-water mark: its buffered plaintext goes nowhere
        const t = await acceptTls(sock, d.tls, Math.min(d.idleMs, HANDSHAKE_MS));
        if (t === undefined) {
          end = 'tls-failed';
          break;
        }
        sock = t;
        lines.swap(t);
        tls = true;
        ehlo = false;
        login = undefined;
      } else if (verb === 'auth') {
        if (!ehlo) {
          if (bad('503 5.5.1 EHLO first')) break;
          continue;
        }
        if (login !== undefined) {
          if (bad('503 5.5.1 already authenticated')) break;
          continue;
        }
        const c = await exchange(arg, ip, tls, d, write, lines);
        if (c === GONE) {
          end = 'gone';
          break;
        }
        if ('reply' in c) {
          if (bad(c.reply)) break;
          continue;
        }
        const v = await verify(c, ip, d);
        d.log('odmr.auth', {
          ip,
          login: v.login ?? logsafe(c.user.slice(0, MAX_LOGGED)),
          mechanism: c.mechanism,
          result: v.result,
        });
        if (v.login !== undefined) {
          login = v.login;
          write('235 2.7.0 authenticated');
        } else if (v.result === 'unavailable') {
          if (bad('454 4.7.0 temporary authentication failure, try again later')) break;
        } else if (++authFailures >= MAX_AUTH_FAILURES) {
          write(`421 4.7.0 ${d.hostname} too many failed authentication attempts, closing; try again later`);
          end = 'auth-failures';
          break;
        } else if (bad('535 5.7.8 authentication failed')) break;
      } else if (verb === 'atrn') {
        if (login === undefined) {
          if (bad('530 5.7.0 authentication required')) break;
          continue;
        }
        const asked = parseAtrn(arg);
        if (asked === null) {
          if (bad('501 5.5.4 syntax: ATRN [domain[,domain...]]')) break;
          continue;
        }
        const mine = await d.domainsOf(login);
        const want = asked.length === 0 ? [...mine] : asked;
        const refused = want.filter((x) => !mine.includes(x));
        if (want.length === 0 || refused.length > 0) {
          d.log('odmr.atrn', { login, ip, domains: want.join(','), result: 'refused' });
          write(
            `450 4.7.1 ATRN request refused${refused.length > 0 ? `: ${refused.join(',')} not held for ${login}` : ': no domains held for you'}`,
          );
          continue;
        }
        let count = 0;
        for (const x of want) count += await d.waiting(x);
        if (count === 0) {
          d.log('odmr.atrn', { login, ip, domains: want.join(','), result: 'no-mail' });
          write('453 4.3.0 You have no mail');
          continue;
        }
        write('250 2.0.0 OK now reversing the connection');
        sock.pause(); // nothing of the customer's greeting may be read before the SMTP client listens
        const rest = lines.detach();
        if (rest.length > 0) sock.unshift(rest);
        d.log('odmr.atrn', { login, ip, domains: want.join(','), result: 'reversed', waiting: count });
        const outcome = await d.push(want, sock, tls);
        if (outcome === 'busy') d.log('odmr.atrn', { login, ip, domains: want.join(','), result: 'busy' });
        end = 'reversed';
        break;
      } else if (verb === 'etrn' || verb === 'turn' || verb === 'mail' || verb === 'rcpt' || verb === 'data') {
        if (bad(`502 5.5.1 ${verb.toUpperCase()} not available here: this is the ODMR port, use ATRN`)) break;
      } else if (bad('500 5.5.1 unknown command')) break;
    }
  } catch (err) {
    end = `error: ${errText(err)}`;
  } finally {
    d.log('odmr.session', { ip, login: login ?? '', end });
    // after the reversal the SMTP client has said QUIT (or found the connection dead): either way it ends here
    closeDraining(sock);
  }
}

/** True once `sock` has taken its buffered bytes, false when it closed or `ms` passed first. */
function drained(sock: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      sock.off('drain', onDrain);
      sock.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => finish(true);
    const onClose = (): void => finish(false);
    const timer = setTimeout(() => finish(false), ms);
    sock.on('drain', onDrain);
    sock.on('close', onClose);
  });
}

/**
 * Half-closes after the last reply and reads (and drops) what the client still sends, for at most DRAIN_MS: closing
 * with unread input makes the kernel answer with a reset, which can throw away the reply just written (a 421 after
 * a pipelined flood of bad commands).
 */
function closeDraining(sock: Socket): void {
  sock.end();
  sock.on('data', () => undefined);
  sock.resume();
  const timer = setTimeout(() => sock.destroy(), DRAIN_MS);
  timer.unref();
  sock.once('close', () => clearTimeout(timer));
}

/** What one AUTH exchange gave: credentials to check, a reply (malformed, cancelled, no TLS), or 'gone'. */
type Credentials =
  | { readonly mechanism: 'plain' | 'login'; readonly user: string; readonly password: string }
  | { readonly mechanism: 'cram-md5'; readonly user: string; readonly challenge: string; readonly digest: string };

/** One AUTH exchange: the credentials, a reply for a refusal before any check, or 'gone'. */
async function exchange(
  arg: string,
  ip: string,
  tls: boolean,
  d: OdmrDeps,
  write: (s: string) => void,
  lines: Lines,
): Promise<Credentials | { reply: string } | typeof GONE> {
  const [mech = '', initial] = arg.trim().split(/\s+/);
  const m = asciiLower(mech);
  const ask = async (prompt: string): Promise<string | null | typeof GONE> => {
    write(`334 ${prompt}`);
    const l = await lines.next();
    if (l === null) return GONE;
    if (l === LONG || l.trim() === '*') return null;
    return l;
  };
  const cancelled = { reply: '501 5.7.0 authentication cancelled or malformed' };
  if (m === 'plain' || m === 'login') {
    if (!tls && !d.plainAuthOk(ip)) {
      d.log('odmr.auth', { ip, mechanism: m, result: 'needs-tls' });
      return { reply: '538 5.7.11 encryption required: STARTTLS first' };
    }
    if (m === 'plain') {
      const r = initial !== undefined ? initial : await ask('');
      if (r === GONE) return r;
      const t = r === null || r === '=' ? null : unb64(r);
      const parts = t?.split('\0');
      if (parts?.length !== 3) return cancelled;
      return { mechanism: m, user: parts[1] ?? '', password: parts[2] ?? '' };
    }
    const u = initial !== undefined ? initial : await ask(b64('Username:'));
    if (u === GONE) return u;
    const uu = u === null ? null : unb64(u);
    if (uu === null) return cancelled;
    const p = await ask(b64('Password:'));
    if (p === GONE) return p;
    const pp = p === null ? null : unb64(p);
    if (pp === null) return cancelled;
    return { mechanism: m, user: uu, password: pp };
  }
  if (m === 'cram-md5') {
    const challenge = `<${randomBytes(12).toString('hex')}.${Date.now()}@${d.hostname}>`;
    const r = await ask(b64(challenge));
    if (r === GONE) return r;
    const t = r === null ? null : unb64(r);
    const sp = t?.lastIndexOf(' ') ?? -1;
    if (t === null || t === undefined || sp <= 0) return cancelled;
    return { mechanism: m, user: t.slice(0, sp), challenge, digest: t.slice(sp + 1) };
  }
  return { reply: '504 5.5.4 unknown mechanism: CRAM-MD5, PLAIN or LOGIN' };
}

/**
 * Checks credentials as smtpd's AUTH does: first the wait of the failed-login slowdown (per address and per login),
 * then the check. Only the ATRN login of a held domain authenticates here: a mailbox with the right password and no
 * held domain is refused like a wrong password, after the same work (the password checked, the held domains looked
 * up), so the answer and its time tell a client nothing about other mailboxes' passwords.
 */
async function verify(
  c: Credentials,
  ip: string,
  d: OdmrDeps,
): Promise<{ readonly login?: string; readonly result: 'ok' | 'refused' | 'not-atrn' | 'unavailable' }> {
  const key = asciiLower(c.user);
  // counted under the mailbox's own name, as smtpd and pop3d count it (joe@alias.example is joe@example.com)
  const counted = await countedAs(d.throttleKey?.bind(d), key);
  const wait = await d.throttle.attempt(ip, counted);
  if (wait > 0) await sleep(wait);
  let login: string | null;
  try {
    if (c.mechanism === 'cram-md5') {
      const secret = await d.cramSecret(key);
      const ok =
        secret !== null &&
        /^[0-9a-f]{32}$/i.test(c.digest) &&
        timingSafeEqual(createHmac('md5', secret).update(c.challenge).digest(), Buffer.from(c.digest, 'hex'));
      login = ok ? key : null;
    } else login = c.user === '' || c.password === '' ? null : await d.checkPassword(c.user, c.password);
  } catch {
    d.throttle.ended(ip, counted);
    return { result: 'unavailable' }; // the directory could not answer: not the client's failure
  }
  const held = await d.domainsOf(login ?? key).catch(() => []);
  if (login !== null && held.length > 0) {
    d.throttle.succeeded(counted, ip);
    return { login, result: 'ok' };
  }
  d.throttle.failed(ip, counted);
  return { result: login === null ? 'refused' : 'not-atrn' };
}
