// The web admin's requests to the process that may change things: typed, checked field by field (they come from the
// unprivileged web process, which parsed HTTP), answered after the session, the CSRF token and the decision.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { QuailError } from '../core/index.js';
import {
  authenticate,
  DirectoryError,
  parseFlag,
  throttleLogin,
  type Ctx,
  type MailboxFlag,
} from '../directory/index.js';
import { perform, type Change } from './changes.js';
import { parseListChange, parseListView } from './lists.js';
import { AccessDenied, principalOf, type Principal } from './policy.js';
import { view, type View, type ViewData } from './views.js';

/** Who is logged in, as the web pages need it. */
export interface Who {
  readonly login: string;
  readonly csrf: string;
  readonly systemAdmin: boolean;
  readonly domains: readonly string[];
}

export type WebRequest =
  | { readonly op: 'login'; readonly login: string; readonly password: string }
  /** The name the login throttle counts `login` under (alias domains resolved), answered as `done`; no session. */
  | { readonly op: 'login-name'; readonly login: string }
  | { readonly op: 'logout'; readonly token: string }
  | { readonly op: 'view'; readonly token: string; readonly view: View }
  | { readonly op: 'change'; readonly token: string; readonly csrf: string; readonly change: Change };

export type WebAnswer =
  | {
      readonly ok: true;
      readonly who?: Who;
      /** A new session (login): the cookie's token, shown to no one else. */
      readonly token?: string;
      readonly data?: ViewData;
      readonly done?: string;
    }
  | { readonly ok: false; readonly status: 400 | 401 | 403 | 404; readonly error: string };

/** A session lasts this long from its login (then the user logs in again). */
const SESSION_MS = 8 * 3600_000;
const MAX_TEXT = 1024;

/** The session's id in the directory: the token's SHA-256, so a copy of the table logs no one in. */
const sessionId = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

function text(v: unknown, what: string, max = MAX_TEXT): string {
  if (typeof v !== 'string' || v.length > max)
    throw new DirectoryError(`${what}: expected text of at most ${max} characters`);
  return v;
}
function size(v: unknown, what: string): number | null {
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new DirectoryError(`${what}: expected a whole number ≥ 0 or none`);
  return v;
}
const optional = <T>(o: Record<string, unknown>, key: string, f: (v: unknown) => T): Record<string, T> =>
  o[key] === undefined ? {} : { [key]: f(o[key]) };

function change(v: unknown): Change {
  if (typeof v !== 'object' || v === null) throw new DirectoryError('change: expected an object');
  const o = v as Record<string, unknown>;
  const address = (): string => text(o['address'], 'address');
  switch (o['op']) {
    case 'mailbox.add':
      return {
        op: 'mailbox.add',
        address: address(),
        password: o['password'] === null ? null : text(o['password'], 'password'),
        ...optional(o, 'realName', (x) => text(x, 'name')),
        ...optional(o, 'quotaBytes', (x) => size(x, 'quota')),
        ...optional(o, 'quotaMessages', (x) => size(x, 'message quota')),
        ...(o['flags'] === undefined
          ? {}
          : {
              flags: (Array.isArray(o['flags']) ? (o['flags'] as unknown[]) : [o['flags']]).map((f): MailboxFlag =>
                parseFlag(text(f, 'flag')),
              ),
            }),
      };
    case 'mailbox.remove':
      return { op: 'mailbox.remove', address: address() };
    case 'mailbox.password':
      return { op: 'mailbox.password', address: address(), password: text(o['password'], 'password') };
    case 'mailbox.quota':
      return { op: 'mailbox.quota', address: address(), quotaBytes: size(o['quotaBytes'], 'quota') };
    case 'mailbox.forward': {
      const t = o['targets'];
      if (!Array.isArray(t) || t.length > 100) throw new DirectoryError('targets: expected at most 100 addresses');
      return {
        op: 'mailbox.forward',
        address: address(),
        targets: t.map((x) => text(x, 'forward')),
        keepCopy: o['keepCopy'] === true,
      };
    }
    case 'mailbox.services':
      return {
        op: 'mailbox.services',
        address: address(),
        pop: o['pop'] === true,
        imap: o['imap'] === true,
        smtp: o['smtp'] === true,
      };
    case 'mailbox.vacation': {
      const v = o['vacation'];
      if (v === null) return { op: 'mailbox.vacation', address: address(), vacation: null };
      const x = (typeof v === 'object' ? v : {}) as Record<string, unknown>;
      const days = x['days'];
      if (typeof days !== 'number') throw new DirectoryError('vacation: the period must be a number of days');
      return {
        op: 'mailbox.vacation',
        address: address(),
        vacation: { subject: text(x['subject'], 'subject', 200), body: text(x['body'], 'message', 10_000), days },
      };
    }
    case 'mailbox.spam':
      return {
        op: 'mailbox.spam',
        address: address(),
        folder: o['folder'] === null ? null : text(o['folder'], 'spam folder', 64),
      };
    case 'alias.add':
      return { op: 'alias.add', address: address(), target: text(o['target'], 'target') };
    case 'alias.remove':
      return { op: 'alias.remove', address: address(), ...optional(o, 'target', (x) => text(x, 'target')) };
    case 'domain.catchall':
      return { op: 'domain.catchall', domain: text(o['domain'], 'domain'), policy: text(o['policy'], 'policy') };
    case 'admin.add':
    case 'admin.remove':
      return { op: o['op'], domain: text(o['domain'], 'domain'), login: text(o['login'], 'login') };
    default:
      return parseListChange(o);
  }
}

function viewOf(v: unknown): View {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (o['view'] === 'home' || o['view'] === 'self' || o['view'] === 'admins') return { view: o['view'] };
  if (o['view'] === 'domain') return { view: 'domain', domain: text(o['domain'], 'domain', 253) };
  return parseListView(o);
}

/** A message from the web process → a request, or a DirectoryError saying what is wrong with it. */
function parseWebRequest(v: unknown): WebRequest {
  if (typeof v !== 'object' || v === null) throw new DirectoryError('request: expected an object');
  const o = v as Record<string, unknown>;
  switch (o['op']) {
    case 'login':
      return { op: 'login', login: text(o['login'], 'login'), password: text(o['password'], 'password') };
    case 'login-name':
      return { op: 'login-name', login: text(o['login'], 'login') };
    case 'logout':
      return { op: 'logout', token: text(o['token'], 'token') };
    case 'view':
      return { op: 'view', token: text(o['token'], 'token'), view: viewOf(o['view']) };
    case 'change':
      return {
        op: 'change',
        token: text(o['token'], 'token'),
        csrf: text(o['csrf'], 'csrf'),
        change: change(o['change']),
      };
    default:
      throw new DirectoryError(`unknown request ${JSON.stringify(o['op'])}`);
  }
}

const who = (p: Extract<Principal, { kind: 'login' }>, csrf: string): Who => ({
  login: p.login,
  csrf,
  systemAdmin: p.systemAdmin,
  domains: p.domains,
});

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Answers one request: a login makes a session (its token goes back once; the directory keeps its hash), every
 * other request needs a live session, and a change also that session's CSRF token. Refusals are answers (401, 403,
 * 400, 404); trouble (the database down) is thrown, temporary.
 */
export async function serveWeb(ctx: Ctx, raw: unknown, now: Date = new Date()): Promise<WebAnswer> {
  let req: WebRequest;
  try {
    req = parseWebRequest(raw);
  } catch (err) {
    return { ok: false, status: 400, error: (err as Error).message };
  }
  if (req.op === 'login') {
    const m = await authenticate(ctx.root, req.login, req.password, { directory: ctx.dir, now: () => now.getTime() });
    // vpopmail's no-webmail flag keeps a mailbox out of the web
    if (!m || m.flags.includes('no-webmail')) return { ok: false, status: 401, error: 'wrong address or password' };
    await ctx.dir.deleteSessions({ expiredAt: now });
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const login = `${m.local}@${m.domain}`;
    await ctx.dir.addSession({
      id: sessionId(token),
      login,
      csrf,
      created: now,
      expires: new Date(now.getTime() + SESSION_MS),
    });
    const p = await principalOf(ctx.dir, login, { web: true });
    if (p?.kind !== 'login') return { ok: false, status: 401, error: 'wrong address or password' };
    return { ok: true, token, who: who(p, csrf) };
  }
  if (req.op === 'login-name') return { ok: true, done: await throttleLogin(ctx.dir, req.login) };
  if (req.op === 'logout') {
    await ctx.dir.deleteSession(sessionId(req.token));
    return { ok: true };
  }
  const s = await ctx.dir.getSession(sessionId(req.token), now);
  // the mailbox is read on every request: one removed, or flagged no-webmail since the login, is logged out
  const p = s === null ? null : await principalOf(ctx.dir, s.login, { web: true });
  if (s === null || p?.kind !== 'login') {
    if (s !== null) await ctx.dir.deleteSession(s.id);
    return { ok: false, status: 401, error: 'not logged in, or the session ended' };
  }
  try {
    if (req.op === 'view') {
      const data = await view(ctx, p, req.view);
      return data === null
        ? { ok: false, status: 404, error: 'no such page' }
        : { ok: true, who: who(p, s.csrf), data };
    }
    if (!sameToken(req.csrf, s.csrf))
      return {
        ok: false,
        status: 403,
        error: 'the form is out of date or not from this site (CSRF token); reload the page',
      };
    const done = await perform(ctx, p, req.change, s.id);
    // the change may have changed who this is (roles, or the mailbox itself)
    const after = await principalOf(ctx.dir, s.login, { web: true });
    return after?.kind === 'login' ? { ok: true, who: who(after, s.csrf), done } : { ok: true, done };
  } catch (err) {
    if (err instanceof AccessDenied) return { ok: false, status: 403, error: err.message };
    if (err instanceof QuailError && !err.temporary) return { ok: false, status: 400, error: err.message };
    throw err;
  }
}
