// The DNS records a mail domain needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT) and a check of what is published.
import { asciiLower } from '../core/index.js';

/** One record to publish: owner name, type, value, and whether it is required or a suggestion. */
export interface WantedRecord {
  readonly what: 'MX' | 'SPF' | 'DKIM' | 'DMARC' | 'MTA-STS' | 'TLS-RPT';
  readonly name: string;
  readonly type: 'MX' | 'TXT';
  readonly value: string;
  /** Why, and what to do next (a line for the administrator). */
  readonly note: string;
  /** How to compare with what is published: the whole value, or only a record that starts with this tag. */
  readonly tag: string;
}

/** The resolver calls the check needs (node:dns/promises Resolver has them). */
export interface TxtMxResolver {
  resolveMx(name: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolveTxt(name: string): Promise<string[][]>;
}

export interface DkimPublic {
  readonly selector: string;
  readonly record: string;
  readonly active: boolean;
}

/**
 * The records for `domain`, served by the host `me` (control/me): MX and SPF (required), a DKIM record per key
 * (required for the active one), DMARC (p=none to start, with reports to postmaster), and MTA-STS/TLS-RPT as
 * suggestions (MTA-STS also needs its policy file on https://mta-sts.<domain>/.well-known/mta-sts.txt).
 */
export function wantedRecords(domain: string, me: string, dkim: readonly DkimPublic[], now: Date): WantedRecord[] {
  const d = asciiLower(domain);
  const out: WantedRecord[] = [
    {
      what: 'MX',
      name: d,
      type: 'MX',
      value: `10 ${me}.`,
      note: `mail for ${d} comes to ${me}`,
      tag: '',
    },
    {
      what: 'SPF',
      name: d,
      type: 'TXT',
      value: `v=spf1 mx a:${me} ~all`,
      note: 'which hosts send for the domain (RFC 7208); -all instead of ~all once all its mail leaves from here',
      tag: 'v=spf1',
    },
  ];
  for (const k of dkim)
    out.push({
      what: 'DKIM',
      name: `${k.selector}._domainkey.${d}`,
      type: 'TXT',
      value: k.record,
      note: k.active
        ? 'the key outgoing mail is signed with (RFC 6376)'
        : 'an older key: keep it published until mail signed with it has arrived (a few days), then remove it',
      tag: '',
    });
  out.push(
    {
      what: 'DMARC',
      name: `_dmarc.${d}`,
      type: 'TXT',
      value: `v=DMARC1; p=none; rua=mailto:postmaster@${d}`,
      note: 'what receivers do with mail that fails SPF and DKIM (RFC 7489); p=quarantine, then p=reject, once reports show all is signed',
      tag: 'v=DMARC1',
    },
    {
      what: 'MTA-STS',
      name: `_mta-sts.${d}`,
      type: 'TXT',
      value: `v=STSv1; id=${now.toISOString().slice(0, 10).replaceAll('-', '')}`,
      note: `suggested (RFC 8461): also serve https://mta-sts.${d}/.well-known/mta-sts.txt with "version: STSv1", "mode: testing", "mx: ${me}", "max_age: 86400"`,
      tag: 'v=STSv1',
    },
    {
      what: 'TLS-RPT',
      name: `_smtp._tls.${d}`,
      type: 'TXT',
      value: `v=TLSRPTv1; rua=mailto:postmaster@${d}`,
      note: 'suggested (RFC 8460): daily reports of TLS failures delivering to you',
      tag: 'v=TLSRPTv1',
    },
  );
  return out;
}

export type CheckResult =
  | { readonly state: 'ok'; readonly published: string }
  | { readonly state: 'missing' }
  | { readonly state: 'different'; readonly published: string }
  | { readonly state: 'unknown'; readonly error: string };

/** Space-insensitive TXT comparison (`v=DKIM1;k=rsa` and `v=DKIM1; k=rsa` are the same record). */
const norm = (s: string): string => s.replace(/\s+/g, '').replace(/;$/, '').toLowerCase();

const code = (err: unknown): string => (err as { code?: string }).code ?? String(err);

/** Compares one wanted record with what the resolver returns. */
export async function checkRecord(w: WantedRecord, r: TxtMxResolver): Promise<CheckResult> {
  try {
    if (w.type === 'MX') {
      const mx = await r.resolveMx(w.name);
      if (mx.length === 0) return { state: 'missing' };
      const want = asciiLower(w.value.split(' ')[1]?.replace(/\.$/, '') ?? '');
      const published = mx.map((m) => `${m.priority} ${m.exchange}.`).join(', ');
      return mx.some((m) => asciiLower(m.exchange.replace(/\.$/, '')) === want)
        ? { state: 'ok', published }
        : { state: 'different', published };
    }
    const txt = (await r.resolveTxt(w.name)).map((parts) => parts.join(''));
    const tagged = w.tag === '' ? txt : txt.filter((t) => norm(t).startsWith(norm(w.tag)));
    if (tagged.length === 0) return { state: 'missing' };
    const exact = tagged.find((t) => norm(t) === norm(w.value));
    if (exact !== undefined) return { state: 'ok', published: exact };
    // SPF, DMARC, MTA-STS, TLS-RPT: any record of the kind is the administrator's choice; DKIM must be the key
    if (w.tag !== '') return { state: 'ok', published: tagged.join(' | ') };
    return { state: 'different', published: tagged.join(' | ') };
  } catch (err) {
    const c = code(err);
    if (c === 'ENOTFOUND' || c === 'ENODATA') return { state: 'missing' };
    return { state: 'unknown', error: c };
  }
}
