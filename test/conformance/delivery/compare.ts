// FORMAT.md section 9 for kind delivery: what is compared, and how (multisets, sets, selected env keys).
import type { ObservedMessage } from './collect.js';
import type { ObservedFile } from './files.js';

/** 9.3: the qmail-local variables compared in `.env0` files (PATH and PWD come from the process). */
const ENV_KEYS = [
  'USER',
  'HOME',
  'LOCAL',
  'HOST',
  'RECIPIENT',
  'SENDER',
  'NEWSENDER',
  'EXT',
  'EXT2',
  'EXT3',
  'EXT4',
  'HOST2',
  'HOST3',
  'HOST4',
  'DEFAULT',
  'DTLINE',
  'RPLINE',
  'UFLINE',
] as const;

/**
 * 9.6: in a QSBMF bounce the `<address>:` paragraphs follow the order in which parallel deliveries finished;
 * they are sorted (on both sides) before comparing.
 */
export function sortBounceParagraphs(text: string): string {
  const intro = text.indexOf("I'm afraid I wasn't able to deliver");
  const end = text.indexOf('--- Below this line is a copy of the message.');
  if (intro < 0 || end < 0) return text;
  const start = text.indexOf('\n\n<', intro);
  if (start < 0 || start > end) return text;
  const paras = text
    .slice(start + 2, end)
    .split(/(?<=\n\n)(?=<)/)
    .sort();
  return text.slice(0, start + 2) + paras.join('') + text.slice(end);
}

const clip = (s: string, n = 220): string => (s.length > n ? `${s.slice(0, n - 3)}...` : s);

/** The elements only in `a`, and only in `b` (multisets of strings). */
function multisetDiff(a: readonly string[], b: readonly string[]): { onlyA: string[]; onlyB: string[] } {
  const rest = [...b];
  const onlyA: string[] = [];
  for (const x of a) {
    const i = rest.indexOf(x);
    if (i >= 0) rest.splice(i, 1);
    else onlyA.push(x);
  }
  return { onlyA, onlyB: rest };
}

function reportMultiset(what: string, expected: readonly string[], actual: readonly string[], out: string[]): void {
  const { onlyA, onlyB } = multisetDiff(expected, actual);
  if (onlyA.length === 0 && onlyB.length === 0) return;
  out.push(
    `${what}: missing [${onlyA.map((x) => clip(x)).join(' | ')}] unexpected [${onlyB.map((x) => clip(x)).join(' | ')}]`,
  );
}

interface ExpectedMessage {
  label: string;
  origin?: string;
  parent?: string;
  via_delivery_to?: string;
  sender?: string;
  deliveries?: Array<{ channel: string; recipient: string; result: string; report: string }>;
  state?: string;
  triple_bounce_discarded?: boolean;
}

/** 9.2: per label, origin/parent/sender/state and the multiset of (channel, recipient, result, report). */
export function compareMessages(
  expected: readonly ExpectedMessage[],
  actual: readonly ObservedMessage[],
  out: string[],
): void {
  reportMultiset(
    'message labels',
    expected.map((m) => m.label),
    actual.map((m) => m.label),
    out,
  );
  for (const e of expected) {
    const a = actual.find((m) => m.label === e.label);
    if (a === undefined) continue;
    for (const k of ['origin', 'parent', 'via_delivery_to', 'sender', 'state'] as const) {
      if ((e[k] ?? '') !== (a[k] ?? ''))
        out.push(`${e.label}.${k}: expected ${JSON.stringify(e[k])} got ${JSON.stringify(a[k])}`);
    }
    if ((e.triple_bounce_discarded ?? false) !== (a.triple_bounce_discarded ?? false)) {
      out.push(`${e.label}.triple_bounce_discarded: expected ${String(e.triple_bounce_discarded ?? false)}`);
    }
    const fmt = (d: { channel: string; recipient: string; result: string; report: string }): string =>
      `${d.channel} ${d.recipient} ${d.result} ${d.report}`;
    reportMultiset(`${e.label} deliveries`, (e.deliveries ?? []).map(fmt), a.deliveries.map(fmt), out);
  }
}

interface ExpectedFile {
  path: string;
  mode?: string;
  owner?: string;
  group?: string;
  status?: string;
  maildir_file?: boolean;
  content?: string;
  env?: Record<string, string>;
}

/** 9.3: files keyed by path (maildir entries: multisets per directory), with mode, owner, group, content/env. */
export function compareFiles(expected: readonly ExpectedFile[], actual: readonly ObservedFile[], out: string[]): void {
  const key = (f: ExpectedFile | ObservedFile): string => {
    const env = f.env
      ? ENV_KEYS.map((k) => (k in (f.env ?? {}) ? `${k}=${f.env?.[k] ?? ''}` : `${k} absent`)).join('\n')
      : '';
    const content = f.content === undefined ? '' : sortBounceParagraphs(f.content);
    return `${f.path} mode=${f.mode ?? ''} owner=${f.owner ?? ''} group=${f.group ?? ''} status=${f.status ?? ''}\n${env}${content}`;
  };
  const e = expected.map(key);
  const a = actual.map(key);
  const { onlyA, onlyB } = multisetDiff(e, a);
  if (onlyA.length === 0 && onlyB.length === 0) return;
  // Name the paths, and for a path on both sides the first differing line.
  const firstLine = (x: string): string => x.slice(0, x.indexOf('\n'));
  const parts: string[] = [];
  for (const x of onlyA) {
    const twin = onlyB.find((y) => firstLine(y).split(' ')[0] === firstLine(x).split(' ')[0]);
    if (twin === undefined) {
      parts.push(`missing ${firstLine(x)}`);
      continue;
    }
    const xl = x.split('\n');
    const yl = twin.split('\n');
    let i = 0;
    while (i < xl.length && xl[i] === yl[i]) i++;
    parts.push(
      `${firstLine(x).split(' ')[0]}: line ${i + 1} expected ${JSON.stringify(clip(xl[i] ?? '<end>', 120))} got ${JSON.stringify(clip(yl[i] ?? '<end>', 120))}`,
    );
  }
  for (const y of onlyB) {
    if (!onlyA.some((x) => firstLine(x).split(' ')[0] === firstLine(y).split(' ')[0]))
      parts.push(`unexpected ${firstLine(y)}`);
  }
  out.push(`files: ${parts.join('; ')}`);
}

interface RemoteLike {
  relay?: string;
  helo?: string;
  mail_from?: string;
  rcpt_to?: readonly string[];
  data?: string;
}

/** 9.4: remote transactions as a multiset of (relay, helo, mail_from, rcpt_to, data). */
export function compareRemote(expected: readonly RemoteLike[], actual: readonly RemoteLike[], out: string[]): void {
  const key = (r: RemoteLike): string =>
    `${r.relay ?? ''} helo=${r.helo ?? ''} from=<${r.mail_from ?? ''}> to=${JSON.stringify(r.rcpt_to ?? [])}\n${sortBounceParagraphs(r.data ?? '')}`;
  const { onlyA, onlyB } = multisetDiff(expected.map(key), actual.map(key));
  if (onlyA.length === 0 && onlyB.length === 0) return;
  const parts: string[] = [];
  for (const x of onlyA) {
    const head = x.slice(0, x.indexOf('\n'));
    const twin = onlyB.find((y) => y.slice(0, y.indexOf('\n')) === head);
    if (twin === undefined) parts.push(`missing ${head}`);
    else {
      const xl = x.split('\n');
      const yl = twin.split('\n');
      let i = 0;
      while (i < xl.length && xl[i] === yl[i]) i++;
      parts.push(
        `${head} data line ${i}: expected ${JSON.stringify(clip(xl[i] ?? '<end>', 120))} got ${JSON.stringify(clip(yl[i] ?? '<end>', 120))}`,
      );
    }
  }
  for (const y of onlyB) {
    const head = y.slice(0, y.indexOf('\n'));
    if (!onlyA.some((x) => x.slice(0, x.indexOf('\n')) === head)) parts.push(`unexpected ${head}`);
  }
  out.push(`remote: ${parts.join('; ')}`);
}
