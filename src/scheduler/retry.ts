// qmail-send's retry schedule (docs/QMAIL.md F.2) and the lifetime rule (F.3).

/** The extra line a deferral gets once the message is older than queuelifetime (F.3, bn-006). */
export const TOO_LONG = "I'm not going to try again; this message has been in the queue too long.\n";

/** floor(sqrt(x)) for x ≥ 0, exact for integers (no floating-point rounding at perfect squares). */
export function isqrt(x: number): number {
  if (x <= 0) return 0;
  let r = Math.floor(Math.sqrt(x));
  while (r * r > x) r--;
  while ((r + 1) * (r + 1) <= x) r++;
  return r;
}

/**
 * Next attempt when a channel of a message is taken up at `now`: birth + (floor(sqrt(now − birth)) + skip)², where
 * skip is the channel's chanskip (channels.ts: 10 for local, 20 for remote — about birth + (10k)² or (20k)²).
 */
export function nextRetry(birth: number, now: number, skip: number): number {
  const n = (now < birth ? 0 : isqrt(Math.floor(now - birth))) + skip;
  return birth + n * n;
}

/** F.3: an attempt made after birth + queuelifetime turns a deferral into a failure. */
export const isDying = (birth: number, now: number, lifetime: number): boolean => now > birth + lifetime;
