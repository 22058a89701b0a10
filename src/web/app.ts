// The web admin's HTTP side (hono): pages and forms, the session cookie, login throttling; every read and change is a
// typed request to the backend (src/access's serveWeb, in this process or in the root parent over IPC).
import { randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Change, View, WebAnswer, WebRequest, Who } from '../access/index.js';
import { countedAs, type LoginAttempts } from '../throttle/index.js';
import { mountListRoutes } from './list-routes.js';
import { adminsPage } from './more-pages.js';
import { domainPage, errorPage, homePage, loginPage, selfPage, type Frame, type Html } from './pages.js';

/** Where requests go: answers, or a thrown error when the backend cannot be reached (503). */
export type Backend = (req: WebRequest) => Promise<WebAnswer>;

/**
 * A route another component adds (the mailing lists' RFC 8058 one-click unsubscribe, `POST /unsubscribe/...`): a
 * fetch-style handler, run in the web process. It gets no session; what it changes it must ask its own backend for.
 */
export interface WebRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly handler: (req: Request) => Promise<Response>;
}

/** What the app tells its log: logins (ok or not), changes, and trouble reaching the backend. */
export type WebLog = (event: 'web.login' | 'web.change' | 'web.error', fields: Record<string, string | number>) => void;

export interface WebAppOptions {
  readonly backend: Backend;
  /** Cookies get `Secure` (and the `__Host-` prefix): served over TLS, or behind a TLS-terminating proxy. */
  readonly secure: boolean;
  /** Failed logins (quail start: the table SMTP AUTH, POP3 and ODMR count in too). */
  readonly throttle: LoginAttempts;
  /** The client's address (the socket's, or the proxy's X-Forwarded-For): the throttle's key. */
  readonly clientIp: (c: Context) => string;
  readonly log: WebLog;
  readonly routes?: readonly WebRoute[];
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Forms are small: a larger body is refused before it is read (413). */
const MAX_BODY = 64 * 1024;

type Form = Record<string, unknown>;

/**
 * The request's form, or null when it cannot be read (a multipart body without its boundary, or broken): the client's
 * fault, a 400, not an error of the server's.
 */
async function formOf(c: Context): Promise<Form | null> {
  try {
    return await c.req.parseBody();
  } catch {
    return null;
  }
}

function field(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  return typeof v === 'string' ? v : '';
}

/** `100M`, `2G`, `5000`, `none` → bytes or null; undefined when it is not a size. */
export function parseQuota(text: string): number | null | undefined {
  const t = text.trim();
  if (/^(none|unlimited|)$/i.test(t)) return null;
  const m = /^(\d{1,15})\s*([KMGT]?)i?B?$/i.exec(t);
  if (!m) return undefined;
  const n =
    Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A vacation form (the user's own, or an administrator's for a mailbox of its domain): the change, or what is wrong. */
function vacationChange(address: string, b: Record<string, unknown>): Change | string {
  if (field(b, 'on') !== '1') return { op: 'mailbox.vacation', address, vacation: null };
  const days = Number(field(b, 'days'));
  if (!Number.isSafeInteger(days)) return `the period ${JSON.stringify(field(b, 'days'))}: give a number of days`;
  return {
    op: 'mailbox.vacation',
    address,
    vacation: { subject: field(b, 'subject').trim(), body: field(b, 'body'), days },
  };
}

export function createWebApp(o: WebAppOptions): Hono {
  const app = new Hono();
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // `__Host-`: the browser keeps it only when Secure, for this host and path / (no subdomain can plant one)
  const SESSION = o.secure ? '__Host-quail' : 'quail';
  const PRE = o.secure ? '__Host-quail-pre' : 'quail-pre';
  const FLASH = o.secure ? '__Host-quail-flash' : 'quail-flash';
  const cookie = { httpOnly: true, secure: o.secure, sameSite: 'Strict', path: '/' } as const;

  app.use('*', async (c, next) => {
    await next();
    c.header(
      'Content-Security-Policy',
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    );
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', 'no-store');
    if (o.secure) c.header('Strict-Transport-Security', 'max-age=31536000');
  });
  // The templates are indented for reading; a page on a phone need not carry that: runs of white space between tags
  // become one space (HTML renders them alike; text inside a textarea is escaped, so it has no `>`/`<` to match).
  app.use('*', async (c, next) => {
    await next();
    if (!(c.res.headers.get('content-type') ?? '').startsWith('text/html')) return;
    const text = await c.res.text();
    const headers = new Headers(c.res.headers);
    headers.delete('content-length');
    c.res = new Response(text.replace(/>\s+</g, '> <'), { status: c.res.status, headers });
  });
  app.use('*', bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.text('form too large\n', 413) }));

  const ask = async (c: Context, req: WebRequest): Promise<WebAnswer | Response> => {
    try {
      return await o.backend(req);
    } catch (err) {
      o.log('web.error', { error: err instanceof Error ? err.message : String(err), path: c.req.path });
      return c.html(errorPage(503, 'The server cannot do this just now; try again in a minute.'), 503);
    }
  };
  const takeFlash = (c: Context): Frame['flash'] | undefined => {
    const f = getCookie(c, FLASH);
    if (f === undefined) return undefined;
    deleteCookie(c, FLASH, cookie);
    const ok = f.startsWith('1');
    try {
      return { ok, text: decodeURIComponent(f.slice(1)) };
    } catch {
      return undefined;
    }
  };
  const setFlash = (c: Context, ok: boolean, text: string): void =>
    setCookie(c, FLASH, `${ok ? 1 : 0}${encodeURIComponent(text.slice(0, 500))}`, { ...cookie, maxAge: 60 });
  const badForm = (c: Context): Response | Promise<Response> =>
    c.html(errorPage(400, 'The form could not be read; reload the page and send it again.'), 400);
  const toLogin = (c: Context): Response => {
    deleteCookie(c, SESSION, cookie);
    return c.redirect('/login', 303);
  };

  /** A page: the session's view, or the login page (no session), or the refusal (403, 404). */
  const page = async (
    c: Context,
    v: View,
    render: (who: Who, a: Extract<WebAnswer, { ok: true }>, flash?: Frame['flash']) => Html | null,
  ): Promise<Response> => {
    const token = getCookie(c, SESSION);
    if (token === undefined) return toLogin(c);
    const a = await ask(c, { op: 'view', token, view: v });
    if (a instanceof Response) return a;
    if (!a.ok) return a.status === 401 ? toLogin(c) : c.html(errorPage(a.status, a.error), a.status);
    const out = a.who ? render(a.who, a, takeFlash(c)) : null;
    return out === null ? c.html(errorPage(404, 'no such page'), 404) : c.html(out);
  };

  /** A change: needs the session and its CSRF token; the backend checks both and the permission. */
  const change = async (c: Context, make: (body: Record<string, unknown>) => Change | string, back: string) => {
    const token = getCookie(c, SESSION);
    if (token === undefined) return toLogin(c);
    const body = await formOf(c);
    if (body === null) return badForm(c);
    const csrf = field(body, 'csrf');
    const ch = make(body);
    if (typeof ch === 'string') {
      setFlash(c, false, ch);
      return c.redirect(back, 303);
    }
    const a = await ask(c, { op: 'change', token, csrf, change: ch });
    if (a instanceof Response) return a;
    o.log('web.change', { op: ch.op, status: a.ok ? 200 : a.status, ip: o.clientIp(c) });
    if (!a.ok) {
      if (a.status === 401) return toLogin(c);
      // refused (403) or wrong (400): a page that says so, with the status, not a redirect
      if (a.status === 403) return c.html(errorPage(403, a.error), 403);
      setFlash(c, false, a.error);
      return c.redirect(back, 303);
    }
    setFlash(c, true, a.done ?? 'done');
    return c.redirect(back, 303);
  };

  app.get('/', (c) =>
    page(c, { view: 'home' }, (who, a, f) => (a.data?.view === 'home' ? homePage(who, a.data, f) : null)),
  );
  app.get('/me', (c) =>
    page(c, { view: 'self' }, (who, a, f) => (a.data?.view === 'self' ? selfPage(who, a.data.mailbox, f) : null)),
  );
  app.get('/domain/:domain', (c) =>
    page(c, { view: 'domain', domain: c.req.param('domain') }, (who, a, f) =>
      a.data?.view === 'domain' ? domainPage(who, a.data, f) : null,
    ),
  );

  app.get('/admins', (c) =>
    page(c, { view: 'admins' }, (who, a, f) => (a.data?.view === 'admins' ? adminsPage(who, a.data, f) : null)),
  );
  app.get('/login', (c) => {
    const pre = randomBytes(18).toString('base64url');
    setCookie(c, PRE, pre, { ...cookie, maxAge: 3600 });
    const f = takeFlash(c);
    return c.html(loginPage(pre, f?.text));
  });
  app.post('/login', async (c) => {
    const body = await formOf(c);
    if (body === null) return badForm(c);
    const login = field(body, 'login').trim().slice(0, 320);
    const ip = o.clientIp(c);
    // the login form's own CSRF token (double submit): no site can log a browser in to an account of its choosing
    const pre = getCookie(c, PRE);
    if (pre === undefined || pre !== field(body, 'pre')) {
      setFlash(c, false, 'The login form was out of date; log in again.');
      return c.redirect('/login', 303);
    }
    // counted as the directory reads it (any case, user%domain) under the mailbox's own domain (alias domains
    // resolved by the backend, as SMTP AUTH, POP3 and ODMR count theirs)
    const key = await countedAs(async (l) => {
      const n = await o.backend({ op: 'login-name', login: l });
      return n.ok && n.done !== undefined ? n.done : l;
    }, login);
    const wait = await o.throttle.attempt(ip, key);
    if (wait > 0) await sleep(wait);
    const a = await ask(c, { op: 'login', login, password: field(body, 'password').slice(0, 1024) });
    if (a instanceof Response) {
      o.throttle.ended(ip, key); // the service could not answer: no verdict
      return a;
    }
    o.log('web.login', { login, ip, result: a.ok ? 'ok' : 'refused' });
    if (!a.ok || a.token === undefined) {
      o.throttle.failed(ip, key);
      setFlash(c, false, a.ok ? 'login failed' : a.error);
      return c.redirect('/login', 303);
    }
    o.throttle.succeeded(key, ip);
    deleteCookie(c, PRE, cookie);
    setCookie(c, SESSION, a.token, cookie);
    return c.redirect('/', 303);
  });
  app.post('/logout', async (c) => {
    const token = getCookie(c, SESSION);
    const body = await formOf(c);
    if (body === null) return badForm(c);
    if (token !== undefined) {
      // the CSRF token: a page elsewhere must not log the user out either
      const v = await ask(c, { op: 'view', token, view: { view: 'home' } });
      if (v instanceof Response) return v;
      if (v.ok && v.who?.csrf !== field(body, 'csrf'))
        return c.html(errorPage(403, 'the form is out of date; reload the page'), 403);
      const a = await ask(c, { op: 'logout', token });
      if (a instanceof Response) return a;
    }
    return toLogin(c);
  });

  const dom = (c: Context): string => c.req.param('domain') ?? '';
  const addr = (c: Context, body: Record<string, unknown>): string => `${field(body, 'local').trim()}@${dom(c)}`;
  const back = (c: Context): string => `/domain/${encodeURIComponent(dom(c))}`;
  const domainActions: Record<string, (c: Context, b: Record<string, unknown>) => Change | string> = {
    'mailbox-add': (c, b) => {
      const q = parseQuota(field(b, 'quota'));
      if (q === undefined) return `quota ${JSON.stringify(field(b, 'quota'))}: give a size such as 100M, 2G or none`;
      return { op: 'mailbox.add', address: addr(c, b), password: field(b, 'password'), quotaBytes: q };
    },
    'mailbox-remove': (c, b) => ({ op: 'mailbox.remove', address: addr(c, b) }),
    'mailbox-password': (c, b) => ({ op: 'mailbox.password', address: addr(c, b), password: field(b, 'password') }),
    'mailbox-quota': (c, b) => {
      const q = parseQuota(field(b, 'quota'));
      return q === undefined
        ? `quota ${JSON.stringify(field(b, 'quota'))}: give a size such as 100M, 2G or none`
        : { op: 'mailbox.quota', address: addr(c, b), quotaBytes: q };
    },
    'mailbox-services': (c, b) => ({
      op: 'mailbox.services',
      address: addr(c, b),
      pop: field(b, 'pop') === '1',
      imap: field(b, 'imap') === '1',
      smtp: field(b, 'smtp') === '1',
    }),
    'alias-add': (c, b) => ({ op: 'alias.add', address: addr(c, b), target: field(b, 'target').trim() }),
    'alias-remove': (c, b) => ({ op: 'alias.remove', address: addr(c, b), target: field(b, 'target') }),
    catchall: (c, b) => ({ op: 'domain.catchall', domain: dom(c), policy: field(b, 'policy').trim() }),
    // a mailbox's autoresponder, set or turned off by an administrator of its domain
    vacation: (c, b) => vacationChange(addr(c, b), b),
  };
  app.post('/domain/:domain/:action', (c) => {
    const act = domainActions[c.req.param('action')];
    return act ? change(c, (b) => act(c, b), back(c)) : c.html(errorPage(404, 'no such form'), 404);
  });
  app.post('/me/password', (c) =>
    change(
      c,
      (b) => {
        if (field(b, 'password') !== field(b, 'again')) return 'the two passwords differ; nothing changed';
        return { op: 'mailbox.password', address: field(b, 'self'), password: field(b, 'password') };
      },
      '/me',
    ),
  );
  app.post('/me/vacation', (c) => change(c, (b) => vacationChange(field(b, 'self'), b), '/me'));
  app.post('/me/spam', (c) =>
    change(
      c,
      (b) => ({
        op: 'mailbox.spam',
        address: field(b, 'self'),
        folder: field(b, 'on') === '1' ? field(b, 'folder').trim() : null,
      }),
      '/me',
    ),
  );
  // the system administrator's page of domain administrators (quail domain admin add|remove)
  const adminChange =
    (op: 'admin.add' | 'admin.remove') =>
    (b: Record<string, unknown>): Change => ({
      op,
      domain: field(b, 'domain').trim(),
      login: field(b, 'login').trim(),
    });
  app.post('/admins/add', (c) => change(c, adminChange('admin.add'), '/admins'));
  app.post('/admins/remove', (c) => change(c, adminChange('admin.remove'), '/admins'));
  app.post('/me/forward', (c) =>
    change(
      c,
      (b) => ({
        op: 'mailbox.forward',
        address: field(b, 'self'),
        targets: field(b, 'targets')
          .split(/[\s,]+/)
          .filter((t) => t !== ''),
        keepCopy: field(b, 'keep') === '1',
      }),
      '/me',
    ),
  );

  // The mailing lists' pages and forms (list-routes.ts).
  mountListRoutes(app, { page, change, size: parseQuota });

  // Routes of other components (the route table: src/start/web-routes.ts).
  for (const r of o.routes ?? []) {
    if (r.method === 'GET') app.get(r.path, (c) => r.handler(c.req.raw));
    else app.post(r.path, (c) => r.handler(c.req.raw));
  }

  app.notFound((c) => c.html(errorPage(404, 'no such page'), 404));
  app.onError((err, c) => {
    o.log('web.error', { error: err.message, path: c.req.path });
    return c.html(errorPage(500, 'Something went wrong; nothing was changed unless the page said so.'), 500);
  });
  return app;
}
