// AUTH PLAIN and LOGIN (RFC 4954, RFC 4616): only after STARTTLS, except from loopback.
import { decodeBase64, decodePlain, encodeBase64 } from './auth.js';
import { R, type Reply } from './replies.js';
import type { Session, Step } from './session.js';

export async function authCommand(s: Session, arg: string, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  if (!s.authAllowed) return fail(R.authNeedsTls);
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
  let result;
  try {
    result = await s.deps.authenticator.verify(user, password, { ip: s.remoteIp });
  } catch (err) {
    result = { ok: false as const, temporary: true, reason: err instanceof Error ? err.message : String(err) };
  }
  if (result.ok) {
    s.authUser = result.user;
    s.authRelay = result.relay !== false;
    s.deps.log('smtp.auth', { ip: s.remoteIp, user: result.user, ok: true });
    s.progress();
    s.send(R.authOk);
    return 'continue';
  }
  s.deps.log('smtp.auth', { ip: s.remoteIp, user, ok: false, reason: result.reason });
  return fail(result.temporary ? R.authUnavailable : R.authFailed);
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
