// Outbound DKIM (RFC 6376): which queued messages are signed, for which domain, and the DKIM-Signature header.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { dkimSign } from 'mailauth';
import { asciiLower, QuailError } from '../core/index.js';
import { ToCrlf } from './crlf.js';
import { activeKey, type DkimKey } from './keys.js';

/** What the signer decided for one message. */
export type SignOutcome =
  | { readonly kind: 'signed'; readonly header: string; readonly domain: string; readonly selector: string }
  | { readonly kind: 'unsigned'; readonly why: string };

const domainOf = (address: string): string => {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : asciiLower(address.slice(at + 1));
};

/**
 * The domain a queued message may be signed for, from what the queue recorded of its origin (its `meta`):
 * an SMTP message after AUTH: the login's domain; an SMTP message from a client that may relay (RELAYCLIENT,
 * meta.relay), or one injected on this host (`quail inject`, sendmail): the envelope sender's domain. Forwards
 * (origin 'forward') and bounces ('bounce') are never signed: quail did not author them and the original
 * signature, if any, is still in the message; a message from the internet (no AUTH, no relay) never either.
 */
export function signingDomain(meta: Readonly<Record<string, string>>, sender: string): string | undefined {
  const origin = meta['origin'];
  if (origin === 'smtp') {
    const auth = meta['auth'];
    if (auth !== undefined && auth !== '') {
      // user@domain (vpopmail's user%domain is normalised at AUTH; taken here too)
      const m = /[@%]([^@%]+)$/.exec(auth);
      return m?.[1] !== undefined ? asciiLower(m[1]) : undefined;
    }
    if (meta['relay'] === '1' && sender !== '') return domainOf(sender) || undefined;
    return undefined;
  }
  if (origin === 'inject' && sender !== '') return domainOf(sender) || undefined;
  return undefined;
}

/** The message's header section (at most the first 256 KiB), for the "already signed by us" check. */
async function headerSection(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('latin1');
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
    const domain = signingDomain(meta, sender);
    if (domain === undefined) return { kind: 'unsigned', why: `origin ${meta['origin'] ?? 'unknown'}, not ours` };
    const key = activeKey(this.root, domain);
    if (key === null) return { kind: 'unsigned', why: `no DKIM key for ${domain}` };
    if (signedBy(await headerSection(path), domain)) return { kind: 'unsigned', why: `already signed by ${domain}` };
    const header = await signFile(path, key, this.clock());
    return { kind: 'signed', header, domain, selector: key.selector };
  }
}
