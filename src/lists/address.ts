// ezmlm's addresses: what the part after `LIST-` asks for, and the `user=host` encoding of an address in it.

/** What one address of a list asks for (the part after `team-`, qmail-local's DEFAULT). */
export type ListRequest =
  | { readonly kind: 'help' }
  | { readonly kind: 'subscribe' | 'unsubscribe'; readonly address?: string }
  | { readonly kind: 'sc' | 'uc'; readonly cookie: string; readonly address: string }
  | { readonly kind: 'accept' | 'reject'; readonly id: string; readonly cookie: string }
  | { readonly kind: 'return'; readonly post: number | 'probe' | null; readonly address: string | null }
  | { readonly kind: 'owner' }
  | { readonly kind: 'unknown'; readonly text: string };

/** `joe@example.org` → `joe=example.org` (ezmlm's and VERP's form; split at the last `@`). */
export function encodeAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : `${address.slice(0, at)}=${address.slice(at + 1)}`;
}

/** `joe=example.org` → `joe@example.org` (split at the last `=`); null when there is none. */
export function decodeAddress(text: string): string | null {
  const eq = text.lastIndexOf('=');
  if (eq <= 0 || eq === text.length - 1) return null;
  return `${text.slice(0, eq)}@${text.slice(eq + 1)}`;
}

/** Reads DEFAULT (lowercase compare of the command word; the address keeps its case for the reply). */
export function parseRequest(ext: string): ListRequest {
  const lower = ext.toLowerCase();
  if (lower === 'help' || lower === 'info' || lower === 'faq') return { kind: 'help' };
  if (lower === 'owner') return { kind: 'owner' };
  for (const kind of ['subscribe', 'unsubscribe'] as const) {
    if (lower === kind) return { kind };
    if (lower.startsWith(`${kind}-`)) {
      const a = decodeAddress(ext.slice(kind.length + 1));
      return a === null ? { kind: 'unknown', text: ext } : { kind, address: a };
    }
  }
  let m = /^(sc|uc)\.(\d+\.[0-9a-f]+)-(.+)$/i.exec(ext);
  if (m) {
    const a = decodeAddress(m[3] as string);
    if (a !== null) return { kind: (m[1] as string).toLowerCase() as 'sc' | 'uc', cookie: m[2] as string, address: a };
  }
  m = /^(accept|reject)-([0-9a-z]+)\.(\d+\.[0-9a-f]+)$/i.exec(ext);
  if (m)
    return {
      kind: (m[1] as string).toLowerCase() as 'accept' | 'reject',
      id: (m[2] as string).toLowerCase(),
      cookie: m[3] as string,
    };
  m = /^return-(\d+|probe)-(.+)$/i.exec(ext);
  if (m) {
    const p = (m[1] as string).toLowerCase();
    return { kind: 'return', post: p === 'probe' ? 'probe' : Number(p), address: decodeAddress(m[2] as string) };
  }
  if (/^return-?$/i.test(ext)) return { kind: 'return', post: null, address: null };
  return { kind: 'unknown', text: ext };
}

/** What a list address does, in words (`quail explain`): `kind` post for `LIST@`, else the request of `LIST-EXT@`. */
export function describeListAddress(list: string, kind: 'post' | 'manage', ext: string): string {
  if (kind === 'post')
    return `a post to the list ${list}: checked (loops, size, members-only, moderation), then one copy per subscriber with VERP`;
  const r = parseRequest(ext);
  switch (r.kind) {
    case 'help':
      return `the list's help: the commands are sent to the sender`;
    case 'owner':
      return `passed on to the list's owners`;
    case 'subscribe':
    case 'unsubscribe':
      return `a request to ${r.kind} ${r.address ?? 'the sender'}: a confirmation request goes to that address`;
    case 'sc':
    case 'uc':
      return `the confirmation of ${r.kind === 'sc' ? 'subscribing' : 'unsubscribing'} ${r.address} (the cookie is checked with the list's secret)`;
    case 'accept':
    case 'reject':
      return `a moderator's decision to ${r.kind} the held post ${r.id}`;
    case 'return':
      return r.address === null
        ? 'a bounce without a subscriber address: dropped'
        : `a bounce of ${r.post === 'probe' ? 'the probe' : `post ${String(r.post)}`} to ${r.address}: counted (README: Bounces)`;
    case 'unknown':
      return `not a command of the list: bounced with the help address`;
  }
}
