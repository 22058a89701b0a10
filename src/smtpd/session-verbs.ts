// SMTP's verbs as a table (verb → handler), the dispatch style pop3d's commands/ use too: the session loop
// (session.ts) looks the verb up; the order rules (MAIL first, RCPT first...) are the handlers' own, as qmail-smtpd's.
import type { SecureContext } from 'node:tls';
import { acceptTls } from '../tcpserver/index.js';
import { R, type Reply } from './replies.js';
import type { Session, Step } from './session.js';
import { authCommand } from './session-auth.js';
import { dataCommand } from './session-data.js';
import { mailCommand, rcptCommand } from './session-envelope.js';
import { etrnCommand } from './etrn.js';

/** One verb: the session, the argument (after the verb and its spaces), the error reply path (counts, tarpit). */
export type Handler = (s: Session, arg: string, fail: (r: Reply) => Promise<Step>) => Promise<Step>;

const VERBS: Readonly<Record<string, Handler>> = {
  helo: (s, arg) => {
    s.reset();
    s.helo = arg;
    s.ehlo = false;
    s.sendRaw(`250 ${s.policy.greeting}\r\n`);
    return Promise.resolve('continue');
  },
  ehlo: (s, arg) => {
    s.reset();
    s.helo = arg;
    s.ehlo = true;
    s.sendRaw(ehloReply(s));
    return Promise.resolve('continue');
  },
  rset: (s) => {
    s.reset();
    s.send(R.flushed);
    return Promise.resolve('continue');
  },
  noop: (s) => {
    s.send(R.ok);
    return Promise.resolve('continue');
  },
  vrfy: (s) => {
    s.send(R.vrfy);
    return Promise.resolve('continue');
  },
  help: (s) => {
    s.send(R.help);
    return Promise.resolve('continue');
  },
  quit: (s) => {
    s.sendRaw(`221 ${s.policy.greeting}\r\n`);
    return Promise.resolve('quit');
  },
  mail: mailCommand,
  rcpt: rcptCommand,
  data: (s, _arg, fail) => dataCommand(s, fail),
  starttls: (s, _arg, fail) => {
    if (!s.deps.tls) return fail(R.unimplemented);
    if (s.secure) return fail(R.tlsAlready);
    return startTls(s);
  },
  auth: authCommand,
  etrn: etrnCommand,
};

/** The handler of a (lower-case) verb, or undefined: unknown (never one of Object.prototype's names). */
export function verbHandler(verb: string): Handler | undefined {
  return Object.hasOwn(VERBS, verb) ? VERBS[verb] : undefined;
}

/** qmail's three lines, then quail's extensions (the conformance runner normalises the extra lines away). */
function ehloReply(s: Session): string {
  const ext = ['PIPELINING', '8BITMIME'];
  ext.push(s.policy.databytes > 0 ? `SIZE ${s.policy.databytes}` : 'SIZE');
  ext.push('ENHANCEDSTATUSCODES', 'SMTPUTF8');
  if (s.deps.etrn) ext.push('ETRN');
  if (s.deps.tls && !s.secure) ext.push('STARTTLS');
  if (s.authAllowed && s.authUser === undefined) ext.push('AUTH PLAIN LOGIN');
  const lines = [s.policy.greeting, ...ext];
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('');
}

/** RFC 3207: 220, drop whatever the client pipelined after STARTTLS, handshake, forget the session state. */
async function startTls(s: Session): Promise<Step> {
  s.send(R.tlsReady);
  s.reader.discard();
  // Waited for as a read is: at most the TLS timeout, and under stress at most the listener's cap (a client that
  // starts TLS and says nothing must not keep its slot past the cap either).
  const secure = await acceptTls(
    s.socket,
    s.deps.tls as SecureContext,
    s.deps.limits.tlsTimeoutSeconds * 1000,
    (t) => s.reader.replace(t),
    (handshake, ms) => s.reader.until(handshake, ms),
  );
  if (secure === undefined) return 'tls-failed';
  s.out = secure;
  s.secure = true;
  s.progress();
  s.reset();
  s.helo = undefined;
  s.ehlo = false;
  s.deps.log('smtp.tls', { ip: s.remoteIp, protocol: secure.getProtocol() ?? '' });
  return 'continue';
}
