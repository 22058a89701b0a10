// AUTH PLAIN and LOGIN (RFC 4954, RFC 4616): only after STARTTLS unless tcp.smtp allows clear text; failures throttled.
import { setTimeout as sleep } from 'node:timers/promises';
import { errText } from '../core/index.js';
import { countedAs } from '../throttle/index.js';
import { decodeBase64, decodePlain, encodeBase64, withDefaultDomain } from './auth.js';
import { R, type Reply } from './replies.js';
import type { Session, Step } from './session.js';

export async function authCommand(s: Session, arg: string, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  if (!s.authAllowed) {
    s.deps.log('smtp.auth', {
      ip: s.remoteIp,
      ok: false,
      reason: s.deps.tls
        ? 'clear-text AUTH refused before STARTTLS (allow this client with QUAIL_CLEARAUTH="1" in control/tcp.smtp if it cannot do TLS)'
        : 'clear-text AUTH refused and no STARTTLS to offer: install control/servercert.pem (quail init makes one) or allow this client with QUAIL_CLEARAUTH="1" in control/tcp.smtp',
    });
    return fail(s.deps.tls ? R.authNeedsTls : R.authNoTls);
  }
  if (s.authUser !== undefined) return fail(R.authTwice);
  if (s.mail) return fail(R.authInMail);
  const [mechRaw = '', initial] = arg.split(' ');
  const mech = mechRaw.toUpperCase();
  let user: string;
  let password: string;
  if (mech === 'PLAIN') {
    const resp = initial ?? (await challenge(s, ''));
    if (typeof resp !== 'string') return resp.step;
    if (resp === '*') return fail(R.authCancelled);
    const creds = decodePlain(resp);
    if (!creds) return fail(R.authMalformed);
    ({ user, password } = creds);
  } else if (mech === 'LOGIN') {
    const u = initial ?? (await challenge(s, encodeBase64('Username:')));
    if (typeof u !== 'string') return u.step;
    if (u === '*') return fail(R.authCancelled);
    const p = await challenge(s, encodeBase64('Password:'));
    if (typeof p !== 'string') return p.step;
    if (p === '*') return fail(R.authCancelled);
    const du = decodeBase64(u);
    const dp = decodeBase64(p);
    if (du === null || dp === null || du === '') return fail(R.authMalformed);
    user = du;
    password = dp;
  } else return fail(R.authMechanism);
  user = withDefaultDomain(user, s.policy.defaultDomain);
  // The same slowdown as POP3 logins: a delay doubling per recent failure, per client address and per login
  // (the throttle counts every spelling the directory takes for one mailbox, JOE@x or joe%X, as one login, and the
  // authenticator names it through alias domains: joe@alias.example is joe@example.com).
  const key = await countedAs(s.deps.authenticator.throttleKey?.bind(s.deps.authenticator), user);
  const wait = await s.deps.authThrottle.attempt(s.remoteIp, key);
  if (wait > 0) await sleep(wait);
  let result;
  try {
    result = await s.deps.authenticator.verify(user, password, { ip: s.remoteIp });
  } catch (err) {
    result = { ok: false as const, temporary: true, reason: errText(err) };
  }
  if (result.ok) {
    s.deps.authThrottle.succeeded(key, s.remoteIp);
    s.authUser = result.user;
    s.authRelay = result.relay !== false;
    s.deps.log('smtp.auth', { ip: s.remoteIp, user: result.user, ok: true });
    s.progress();
    s.send(R.authOk);
    return 'continue';
  }
  s.deps.log('smtp.auth', { ip: s.remoteIp, user, ok: false, reason: result.reason });
  if (result.temporary) {
    s.deps.authThrottle.ended(s.remoteIp, key);
    return fail(R.authUnavailable);
  }
  s.deps.authThrottle.failed(s.remoteIp, key);
  if (++s.authFailures >= s.deps.limits.maxAuthFailures) {
    s.send(R.authTooManyFailures);
    return 'auth-failures';
  }
  return fail(R.authFailed);
}

/** Sends `334 <text>` and reads one line; the end of the session is passed through. */
async function challenge(s: Session, text: string): Promise<string | { step: Step }> {
  s.sendRaw(`334 ${text}\r\n`);
  const got = await s.reader.line(s.timeoutMs, s.deps.limits.maxLine);
  if (got === 'eof') return { step: 'eof' };
  if (got === 'timeout') {
    s.send(R.timeout);
    return { step: 'timeout' };
  }
  if (got === 'too-long') return '';
  return got.line.toString('latin1').trim();
}
