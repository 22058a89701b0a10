// The list changes mail asks for (confirmations, bounces, one-click): checked and written in one place.
import { DirectoryError, memberAddress, type ListMember, type ListTable } from '../directory/index.js';
import { errText, QuailError } from '../core/index.js';
import { checkCookie } from './cookie.js';

/** A change a message (or the web's one-click POST) asks for; the proof is checked by whoever writes. */
export type WriteRequest =
  | {
      readonly op: 'confirm';
      readonly domain: string;
      readonly list: string;
      readonly action: 'sc' | 'uc';
      readonly address: string;
      readonly cookie: string;
    }
  | {
      readonly op: 'oneclick';
      readonly domain: string;
      readonly list: string;
      readonly address: string;
      readonly cookie: string;
    }
  | {
      readonly op: 'bounce';
      readonly domain: string;
      readonly list: string;
      readonly address: string;
      readonly post: number | 'probe';
    };

export type WriteOutcome =
  'subscribed' | 'already-subscribed' | 'unsubscribed' | 'not-subscribed' | 'counted' | 'probe' | 'removed' | 'ignored';

export type WriteAnswer =
  | { readonly ok: true; readonly outcome: WriteOutcome; readonly bounces?: number }
  | { readonly ok: false; readonly permanent: boolean; readonly text: string };

/** Something that applies WriteRequests: the directory itself (direct) or the supervisor over run/lists.sock. */
export interface ListWriter {
  apply(req: WriteRequest): Promise<WriteAnswer>;
  close(): Promise<void>;
}

const DAY = 86_400_000;

/** The settings a bounce is judged by: control/listbouncedays. */
export interface BounceRule {
  readonly days: number;
}

const refuse = (text: string): WriteAnswer => ({ ok: false, permanent: true, text });

/** A bounce (README: Bounces): counted; after `days` of bouncing a probe; a bounced probe removes the address. */
async function bounce(
  t: ListTable,
  r: { domain: string; list: string; address: string; post: number | 'probe' },
  now: number,
  rule: BounceRule,
): Promise<WriteAnswer> {
  const m = await t.getMember(r.domain, r.list, 'subscriber', r.address);
  if (!m) return { ok: true, outcome: 'ignored' };
  if (r.post === 'probe') {
    if (m.probeSent === null) return { ok: true, outcome: 'ignored' };
    await t.removeMember(r.domain, r.list, 'subscriber', r.address);
    return { ok: true, outcome: 'removed', bounces: m.bounces };
  }
  // A probe that did not bounce within the period: the address works again, the count starts over.
  if (m.probeSent !== null && now - m.probeSent.getTime() > rule.days * DAY)
    await t.setProbe(r.domain, r.list, r.address, null);
  const after = (await t.recordBounce(r.domain, r.list, r.address, now)) as ListMember;
  const first = after.firstBounce?.getTime() ?? now;
  if (after.probeSent === null && now - first >= rule.days * DAY) {
    await t.setProbe(r.domain, r.list, r.address, now);
    return { ok: true, outcome: 'probe', bounces: after.bounces };
  }
  return { ok: true, outcome: 'counted', bounces: after.bounces };
}

/**
 * Applies one request to the list tables after checking it: the list exists, the address is usable, the cookie
 * was made with the list's secret for this action and address (and is young enough). Never throws.
 */
export async function applyWrite(t: ListTable, req: WriteRequest, now: number, rule: BounceRule): Promise<WriteAnswer> {
  try {
    const list = await t.get(req.domain, req.list);
    if (!list) return refuse(`there is no list ${req.list}@${req.domain}`);
    let address: string;
    try {
      address = memberAddress(req.address);
    } catch (err) {
      return refuse(errText(err));
    }
    if (req.op === 'bounce') return await bounce(t, { ...req, address }, now, rule);
    const action = req.op === 'oneclick' ? 'oneclick' : req.action;
    const c = checkCookie(list.secret, action, address, req.cookie, now);
    if (c !== 'ok')
      return refuse(
        c === 'expired'
          ? 'the confirmation is too old; send a new request'
          : 'the confirmation code does not match (it was changed, or made up)',
      );
    if (req.op === 'confirm' && req.action === 'sc') {
      const added = await t.addMember(list.domain, list.local, 'subscriber', address);
      return { ok: true, outcome: added ? 'subscribed' : 'already-subscribed' };
    }
    const gone = await t.removeMember(list.domain, list.local, 'subscriber', address);
    return { ok: true, outcome: gone ? 'unsubscribed' : 'not-subscribed' };
  } catch (err) {
    if (err instanceof DirectoryError) return refuse(err.message);
    return { ok: false, permanent: err instanceof QuailError ? !err.temporary : false, text: errText(err) };
  }
}

/** A writer over a directory this process may write (root's CLI, a server not started as root, the supervisor). */
export function directWriter(
  t: ListTable,
  rule: BounceRule,
  now: () => number = Date.now,
  close?: () => Promise<void>,
): ListWriter {
  return {
    apply: (req) => applyWrite(t, req, now(), rule),
    close: close ?? (() => Promise.resolve()),
  };
}

/** Checks the shape of a request read from the socket (anything else is refused); null when it is not one. */
export function parseWriteRequest(v: unknown): WriteRequest | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const s = (k: string): string | null => {
    const x = o[k];
    return typeof x === 'string' && x.length <= 300 ? x : null;
  };
  const domain = s('domain');
  const list = s('list');
  const address = s('address');
  if (domain === null || list === null || address === null) return null;
  if (o['op'] === 'bounce') {
    const p = o['post'];
    if (p === 'probe' || (typeof p === 'number' && Number.isSafeInteger(p) && p >= 0))
      return { op: 'bounce', domain, list, address, post: p };
    return null;
  }
  const cookie = s('cookie');
  if (cookie === null) return null;
  if (o['op'] === 'oneclick') return { op: 'oneclick', domain, list, address, cookie };
  if (o['op'] === 'confirm' && (o['action'] === 'sc' || o['action'] === 'uc'))
    return { op: 'confirm', domain, list, address, cookie, action: o['action'] };
  return null;
}
