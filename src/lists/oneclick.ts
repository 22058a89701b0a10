// RFC 8058 one-click unsubscribe: POST BASE/lists/unsubscribe/DOMAIN/LIST/USER=HOST/COOKIE, body List-Unsubscribe=One-Click.
import { decodeAddress } from './address.js';
import type { ListWriter } from './writer.js';

export interface OneClickAnswer {
  /** HTTP status: 200 done (or was not subscribed), 400 not a one-click body, 403 bad link, 404 not such a path. */
  readonly status: 200 | 400 | 403 | 404 | 503;
  /** A short plain-text answer for the page. */
  readonly text: string;
}

/** The path prefix the web listener mounts. */
export const ONE_CLICK_PREFIX = '/lists/unsubscribe/';

/**
 * Handles one POST: `path` as received (percent-encoded), `body` the urlencoded form (RFC 8058 2: it must hold
 * `List-Unsubscribe=One-Click`). The writer checks the cookie and removes the subscriber. Never throws.
 */
export async function oneClickUnsubscribe(writer: ListWriter, path: string, body: string): Promise<OneClickAnswer> {
  if (!path.startsWith(ONE_CLICK_PREFIX)) return { status: 404, text: 'not a list unsubscribe link' };
  const parts = path.slice(ONE_CLICK_PREFIX.length).split('?')[0]?.split('/') ?? [];
  let decoded: string[];
  try {
    decoded = parts.map((p) => decodeURIComponent(p));
  } catch {
    return { status: 404, text: 'not a list unsubscribe link' };
  }
  const [domain, list, who, cookie] = decoded;
  const address = who === undefined ? null : decodeAddress(who);
  if (decoded.length !== 4 || domain === undefined || list === undefined || cookie === undefined || address === null)
    return { status: 404, text: 'not a list unsubscribe link' };
  const form = new URLSearchParams(body.slice(0, 4096));
  if (form.get('List-Unsubscribe') !== 'One-Click')
    return { status: 400, text: 'a one-click unsubscribe is a POST with the body List-Unsubscribe=One-Click' };
  const a = await writer.apply({ op: 'oneclick', domain, list, address, cookie });
  if (!a.ok) return a.permanent ? { status: 403, text: `not unsubscribed: ${a.text}` } : { status: 503, text: a.text };
  return {
    status: 200,
    text:
      a.outcome === 'unsubscribed'
        ? `${address.toLowerCase()} is unsubscribed from ${list}@${domain}`
        : `${address.toLowerCase()} was not subscribed to ${list}@${domain}`,
  };
}
