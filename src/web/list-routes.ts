// The mailing lists' routes of the web admin: pages (GET) and forms (POST, each with the session's CSRF token),
// mounted by createWebApp with its own page and change helpers. The backend decides (src/access/lists.ts).
import type { Context, Hono } from 'hono';
import type { Change, ListOptions, View, WebAnswer, Who } from '../access/index.js';
import { listPage, listPath, listsPage, postPage } from './list-pages.js';
import type { Frame, Html } from './pages.js';

type Render = (who: Who, a: Extract<WebAnswer, { ok: true }>, flash?: Frame['flash']) => Html | null;

export interface ListRouteHelpers {
  readonly page: (c: Context, v: View, render: Render) => Promise<Response>;
  readonly change: (
    c: Context,
    make: (b: Record<string, unknown>) => Change | string,
    back: string,
  ) => Promise<Response>;
  /** `1M`, `none`... → bytes, null, or undefined when it is not a size (app.ts's parseQuota). */
  readonly size: (text: string) => number | null | undefined;
}

const field = (b: Record<string, unknown>, name: string): string => {
  const v = b[name];
  return typeof v === 'string' ? v : '';
};
const words = (text: string): string[] => text.split(/[\s,;]+/).filter((t) => t !== '');

/** The settings form → the options, or a sentence saying what is wrong. */
function optionsOf(b: Record<string, unknown>, size: ListRouteHelpers['size']): Partial<ListOptions> | string {
  const max = size(field(b, 'maxSize'));
  if (max === undefined || max === 0)
    return `largest post ${JSON.stringify(field(b, 'maxSize'))}: give a size such as 100K, 1M or none`;
  return {
    membersOnly: field(b, 'membersOnly') === '1',
    moderated: field(b, 'moderated') === '1',
    replyToList: field(b, 'replyToList') === '1',
    subjectPrefix: field(b, 'prefix').trim(),
    description: field(b, 'description').trim(),
    maxBytes: max,
  };
}

export function mountListRoutes(app: Hono, h: ListRouteHelpers): void {
  const address = (c: Context): string => c.req.param('address') ?? '';

  app.get('/lists', (c) =>
    h.page(c, { view: 'lists' }, (who, a, f) => (a.data?.view === 'lists' ? listsPage(who, a.data, f) : null)),
  );
  app.get('/list/:address', (c) =>
    h.page(c, { view: 'list', address: address(c) }, (who, a, f) =>
      a.data?.view === 'list' ? listPage(who, a.data, f) : null,
    ),
  );
  app.get('/list/:address/archive/:n', (c) => {
    const n = Number(c.req.param('n'));
    if (!Number.isSafeInteger(n) || n < 1) return c.notFound();
    return h.page(c, { view: 'post', address: address(c), n }, (who, a, f) =>
      a.data?.view === 'post' ? postPage(who, a.data, f) : null,
    );
  });

  app.post('/lists/new', (c) =>
    h.change(
      c,
      (b) => {
        const o = optionsOf(b, h.size);
        if (typeof o === 'string') return o;
        return {
          op: 'list.create',
          address: `${field(b, 'local').trim()}@${field(b, 'domain').trim()}`,
          owners: words(field(b, 'owners')),
          moderators: words(field(b, 'moderators')),
          options: o,
        };
      },
      '/lists',
    ),
  );
  app.post('/lists/users', (c) =>
    h.change(c, (b) => ({ op: 'list.users', domain: field(b, 'domain'), on: field(b, 'on') === '1' }), '/lists'),
  );
  app.post('/list/:address/options', (c) =>
    h.change(
      c,
      (b) => {
        const o = optionsOf(b, h.size);
        return typeof o === 'string' ? o : { op: 'list.options', address: address(c), options: o };
      },
      listPath(address(c)),
    ),
  );
  app.post('/list/:address/members', (c) =>
    h.change(
      c,
      (b) => {
        const role = field(b, 'role');
        if (role !== 'subscriber' && role !== 'owner' && role !== 'moderator')
          return 'choose subscriber, owner or moderator';
        return {
          op: 'list.members',
          address: address(c),
          role,
          add: words(field(b, 'add')),
          remove: words(field(b, 'remove')),
        };
      },
      listPath(address(c)),
    ),
  );
  app.post('/list/:address/moderate', (c) =>
    h.change(
      c,
      (b) => ({
        op: 'list.moderate',
        address: address(c),
        id: field(b, 'id'),
        accept: field(b, 'decision') === 'accept',
      }),
      listPath(address(c)),
    ),
  );
  app.post('/list/:address/delete', (c) => h.change(c, () => ({ op: 'list.delete', address: address(c) }), '/lists'));
}
