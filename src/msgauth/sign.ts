// Outbound DKIM (RFC 6376): which queued messages are signed, for which domain, and the DKIM-Signature header.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { dkimSign } from 'mailauth';
import { asciiLower, QuailError } from '../core/index.js';
import { ToCrlf } from './crlf.js';
import { activeKey, type DkimKey, keyedDomains } from './keys.js';

/** What the signer decided for one message. */
export type SignOutcome =
  | { readonly kind: 'signed'; readonly header: string; readonly domain: string; readonly selector: string }
  | { readonly kind: 'unsigned'; readonly why: string };

const domainOf = (address: string): string => {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : asciiLower(address.slice(at + 1));
};

/**
 * The domains a queued message may be signed for, in order of preference, from what the queue recorded of its
 * origin (its `meta`): an SMTP message after AUTH: the login's domain only; an SMTP message from a client that
 * may relay (RELAYCLIENT, meta.relay), or one injected on this host (`quail inject`, sendmail): the envelope
 * sender's domain, then the From header's. Forwards (origin 'forward') and bounces ('bounce') are never signed:
 * quail did not author them and the original signature, if any, is still in the message; a message from the
 * internet (no AUTH, no relay) never either. The first of them that has a key signs.
 */
export function signingDomains(
  meta: Readonly<Record<string, string>>,
  sender: string,
  fromDomain: string | undefined,
): string[] {
  const origin = meta['origin'];
  const auth = meta['auth'];
  if (origin === 'smtp' && auth !== undefined && auth !== '') {
    // user@domain (vpopmail's user%domain is normalised at AUTH; taken here too)
    const m = /[@%]([^@%]+)$/.exec(auth);
    return m?.[1] !== undefined ? [asciiLower(m[1])] : [];
  }
  if ((origin === 'smtp' && meta['relay'] === '1') || origin === 'inject') {
    const out = sender !== '' && domainOf(sender) !== '' ? [domainOf(sender)] : [];
    if (fromDomain !== undefined && fromDomain !== '' && !out.includes(fromDomain)) out.push(fromDomain);
    return out;
  }
  return [];
}

/** The domain of the (first) address in the header's From field, lower case; undefined when there is none. */
export function fromDomain(header: string): string | undefined {
  const unfolded = header.replace(/\r?\n[ \t]+/g, ' ');
  const line = unfolded.split('\n').find((l) => /^from\s*:/i.test(l));
  if (line === undefined) return undefined;
  const value = line.slice(line.indexOf(':') + 1).replace(/\([^()]*\)/g, ' ');
  const angle = /<[^<>@]*@([^<>\s]+)>/.exec(value);
  const bare = /@([A-Za-z0-9.-]+)/.exec(value);
  const d = (angle?.[1] ?? bare?.[1])?.replace(/\.$/, '');
  return d === undefined ? undefined : asciiLower(d);
}

/**
 * The message's header section (at most the first 256 KiB), for the "already signed by us" check: the first 16 KiB
 * hold it in most messages; only a header section longer than that is read on.
 */
async function headerSection(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(16 * 1024);
    let got = (await fh.read(buf, 0, buf.length, 0)).bytesRead;
    if (got === buf.length && buf.indexOf('\n\n') < 0) {
      const more = Buffer.allocUnsafe(256 * 1024);
      buf.copy(more);
      got += (await fh.read(more, got, more.length - got, got)).bytesRead;
      buf = more;
    }
    const text = buf.subarray(0, got).toString('latin1');
    const end = text.indexOf('\n\n');
    return end < 0 ? text : text.slice(0, end + 1);
  } finally {
    await fh.close();
  }
}

/** True when the header already has a DKIM-Signature with d=domain (the message is not signed twice). */
export function signedBy(header: string, domain: string): boolean {
  const unfolded = header.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split('\n')) {
    if (!/^dkim-signature\s*:/i.test(line)) continue;
    const d = /(?:^|;)\s*d\s*=\s*([^;\s]+)/i.exec(line.slice(line.indexOf(':') + 1));
    if (d?.[1] !== undefined && asciiLower(d[1]) === domain) return true;
  }
  return false;
}

/** Signs the message file with `key` and returns the DKIM-Signature header with LF line ends. */
async function signFile(path: string, key: DkimKey, when: Date): Promise<string> {
  const input = createReadStream(path).pipe(new ToCrlf());
  const signature = {
    signingDomain: key.domain,
    selector: key.selector,
    privateKey: key.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    algorithm: key.algorithm,
    canonicalization: 'relaxed/relaxed',
  };
  // the signer reads signatureData only; the top-level fields are the type's required ones
  // signTime: one t= for the text signed and the header written (mailauth otherwise reads the clock for each)
  const res = await dkimSign(input, { ...signature, signTime: when, signatureData: [signature] });
  const first = res.errors?.[0];
  if (first !== undefined) throw new QuailError(`DKIM signing failed: ${String(first)}`, true);
  const header = res.signatures.replaceAll('\r\n', '\n');
  if (!/^DKIM-Signature:/i.test(header)) throw new QuailError('DKIM signing produced no signature', true);
  return header;
}

/**
 * Decides and signs, once per message file: the outcome is kept (by path, the last 256 messages) so every
 * recipient and every retry of a message carries the same signature, and recipients asked for together stay
 * together. A key that cannot be read is a temporary error (the delivery waits rather than go out unsigned).
 */
export class DkimSigner {
  private readonly done = new Map<string, Promise<SignOutcome>>();

  constructor(
    private readonly root: string,
    private readonly clock: () => Date = () => new Date(),
    private readonly max = 256,
  ) {}

  outcome(messagePath: string, meta: Readonly<Record<string, string>>, sender: string): Promise<SignOutcome> {
    const key = `${messagePath}\0${sender}`;
    let p = this.done.get(key);
    if (p === undefined) {
      p = this.decide(messagePath, meta, sender);
      this.done.set(key, p);
      // a failure is not remembered: the next attempt tries again
      p.catch(() => this.done.delete(key));
      if (this.done.size > this.max) {
        const oldest = this.done.keys().next();
        if (oldest.done !== true) this.done.delete(oldest.value);
      }
    }
    return p;
  }

  private async decide(path: string, meta: Readonly<Record<string, string>>, sender: string): Promise<SignOutcome> {
    const origin = meta['origin'] ?? 'unknown';
    // not ours whatever its From says: decided without reading the file
    if (signingDomains(meta, sender, 'from.invalid').length === 0)
      return { kind: 'unsigned', why: `origin ${origin}, not ours` };
    // no key for any domain: decided without reading the file (docs/PERFORMANCE.md, tenth pass)
    const keyed = keyedDomains(this.root);
    if (keyed.size === 0) {
      const known = signingDomains(meta, sender, undefined);
      return { kind: 'unsigned', why: `no DKIM key for ${known.length > 0 ? known.join(' or ') : 'any domain'}` };
    }
    const head = await headerSection(path);
    const domains = signingDomains(meta, sender, fromDomain(head));
    if (domains.length === 0) return { kind: 'unsigned', why: `origin ${origin}, not ours` };
    let key: DkimKey | null = null;
    for (const d of domains) {
      key = keyed.has(d) ? activeKey(this.root, d) : null;
      if (key !== null) break;
    }
    if (key === null) return { kind: 'unsigned', why: `no DKIM key for ${domains.join(' or ')}` };
    if (signedBy(head, key.domain)) return { kind: 'unsigned', why: `already signed by ${key.domain}` };
    const header = await signFile(path, key, this.clock());
    return { kind: 'signed', header, domain: key.domain, selector: key.selector };
  }
}
