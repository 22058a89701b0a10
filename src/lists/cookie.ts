// Cookies: HMAC-SHA256 with the list's secret over what the cookie allows, with the time it was made.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a cookie allows: confirm a subscription or unsubscription, accept or reject a held post, unsubscribe at once. */
export type CookieAction = 'sc' | 'uc' | 'accept' | 'reject' | 'oneclick';

/** How long a cookie is good for (ezmlm: about ten days for confirmations); one-click links do not expire. */
const COOKIE_DAYS: Readonly<Record<CookieAction, number | null>> = {
  sc: 10,
  uc: 10,
  accept: 14,
  reject: 14,
  oneclick: null,
};

const DAY = 86_400_000;

/** 20 hex digits (80 bits) of HMAC-SHA256(secret, `action stamp subject`). */
function mac(secret: string, action: CookieAction, stamp: number, subject: string): string {
  return createHmac('sha256', secret).update(`${action} ${stamp} ${subject}`).digest('hex').slice(0, 20);
}

/** `STAMP.MAC`, STAMP in seconds since the epoch; `subject` is the address (or the held post's id). */
export function makeCookie(secret: string, action: CookieAction, subject: string, nowMs: number): string {
  const stamp = Math.floor(nowMs / 1000);
  return `${stamp}.${mac(secret, action, stamp, subject.toLowerCase())}`;
}

export type CookieCheck = 'ok' | 'forged' | 'expired';

/** Is `cookie` one we made for this action and subject, and young enough? Never throws. */
export function checkCookie(
  secret: string,
  action: CookieAction,
  subject: string,
  cookie: string,
  nowMs: number,
): CookieCheck {
  const m = /^(\d{1,12})\.([0-9a-f]{20})$/.exec(cookie.toLowerCase());
  if (!m) return 'forged';
  const stamp = Number(m[1]);
  const want = Buffer.from(mac(secret, action, stamp, subject.toLowerCase()), 'latin1');
  const got = Buffer.from(m[2] as string, 'latin1');
  if (!timingSafeEqual(want, got)) return 'forged';
  const days = COOKIE_DAYS[action];
  if (stamp * 1000 > nowMs + 3_600_000) return 'forged';
  if (days !== null && nowMs - stamp * 1000 > days * DAY) return 'expired';
  return 'ok';
}
