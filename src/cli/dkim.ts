// quail dkim keygen|list|show|rotate and quail dns: outbound DKIM keys and the DNS records a domain needs.
import { promises as dnsPromises } from 'node:dns';
import type { Command } from 'commander';
import { Control } from '../control/index.js';
import {
  activeSelector,
  checkDomain,
  checkRecord,
  checkSelector,
  generateKey,
  KEY_ALGORITHMS,
  listDomains,
  listSelectors,
  newSelector,
  publicRecord,
  readKey,
  setActive,
  wantedRecords,
  zoneStrings,
  type DkimPublic,
  type KeyAlgorithm,
  type KeyOwner,
} from '../msgauth/index.js';
import { parseDnsServers } from '../remote/index.js';
import { systemPasswd } from '../users/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';

/** As root the key belongs to control/quailuser, the account the send process signs as; else to the caller. */
function keyOwner(root: string): KeyOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const control = new Control(root);
  const name = control.single('quailuser').value;
  if (name === null)
    throw usageError(
      `${control.path('quailuser')} is missing: run quail init first (the key must belong to that account)`,
    );
  const e = systemPasswd({ root }).byName(name);
  if (!e) throw usageError(`${control.path('quailuser')} names ${name}, which is not an account here`);
  return { uid: e.uid, gid: e.gid };
}

function algorithmOf(s: string | undefined): KeyAlgorithm {
  const a = s ?? 'rsa-2048';
  if (!(KEY_ALGORITHMS as readonly string[]).includes(a))
    throw usageError(`--algorithm ${a}: choose ${KEY_ALGORITHMS.join(' or ')}`);
  return a as KeyAlgorithm;
}

function printRecord(domain: string, selector: string, record: string): void {
  process.stdout.write(`${selector}._domainkey.${domain}. IN TXT ${zoneStrings(record)}\n`);
}

function keysOf(root: string, domain: string): DkimPublic[] {
  const active = activeSelector(root, domain);
  return listSelectors(root, domain).map((s) => ({
    selector: s,
    record: publicRecord(readKey(root, domain, s).privateKey),
    active: s === active,
  }));
}

interface KeyFlags {
  root?: string;
  selector?: string;
  algorithm?: string;
}

export function register(program: Command): void {
  const dkim = program
    .command('dkim')
    .description('DKIM keys that outgoing mail is signed with (one active per domain)');
  addRootOption(
    dkim
      .command('keygen <domain>')
      .description('make a key (control/dkim/DOMAIN/SELECTOR.key) and print the DNS record to publish')
      .option('--selector <s>', 'the selector (default: q and the date, e.g. q20261204)')
      .option('--algorithm <a>', `rsa-2048 (default; every receiver verifies it) or ed25519 (RFC 8463)`),
  ).action(
    action('dkim keygen', (domain: string, flags: KeyFlags) => {
      const root = resolveRoot(flags.root);
      const d = checkDomain(domain);
      const selector = checkSelector(flags.selector ?? newSelector(root, d, new Date()));
      const r = generateKey({
        root,
        domain: d,
        selector,
        algorithm: algorithmOf(flags.algorithm),
        activate: false,
        ...optionalOwner(root),
      });
      process.stdout.write(
        `# key written to ${r.path}${r.active ? ' (active: mail from ' + d + ' is signed with it)' : ' (not active: quail dkim rotate switches)'}\n`,
      );
      process.stdout.write('# publish this record, then check it with quail dns ' + d + ':\n');
      printRecord(d, selector, r.record);
    }),
  );
  addRootOption(
    dkim
      .command('rotate <domain>')
      .description('make a new key and sign with it from now on; the old record stays needed for a few days')
      .option('--selector <s>', 'the new selector (default: q and the date)')
      .option('--algorithm <a>', 'rsa-2048 (default) or ed25519'),
  ).action(
    action('dkim rotate', (domain: string, flags: KeyFlags) => {
      const root = resolveRoot(flags.root);
      const d = checkDomain(domain);
      const old = activeSelector(root, d);
      const selector = checkSelector(flags.selector ?? newSelector(root, d, new Date()));
      const r = generateKey({
        root,
        domain: d,
        selector,
        algorithm: algorithmOf(flags.algorithm),
        activate: true,
        ...optionalOwner(root),
      });
      process.stdout.write(`# new key ${r.path}, active now${old !== null ? ` (was ${old})` : ''}\n`);
      process.stdout.write('# publish this record; keep the old one until mail signed with it has arrived:\n');
      printRecord(d, selector, r.record);
    }),
  );
  addRootOption(dkim.command('list').description('every domain with DKIM keys, its selectors, the active one')).action(
    action('dkim list', (flags: { root?: string }) => {
      const root = resolveRoot(flags.root);
      const domains = listDomains(root);
      for (const d of domains) {
        const active = activeSelector(root, d);
        const sels = listSelectors(root, d).map((s) => (s === active ? `${s} (active)` : s));
        process.stdout.write(`${d} ${sels.join(' ')}${active === null ? ' (none active: not signed)' : ''}\n`);
      }
      if (domains.length === 0) process.stdout.write('no DKIM keys: quail dkim keygen DOMAIN makes one\n');
    }),
  );
  addRootOption(
    dkim
      .command('show <domain>')
      .description('the DNS record of the active key (or --selector S)')
      .option('--selector <s>', 'another selector of the domain'),
  ).action(
    action('dkim show', (domain: string, flags: KeyFlags) => {
      const root = resolveRoot(flags.root);
      const d = checkDomain(domain);
      const selector = flags.selector !== undefined ? checkSelector(flags.selector) : activeSelector(root, d);
      if (selector === null) throw usageError(`${d} has no DKIM key: quail dkim keygen ${d} makes one`);
      printRecord(d, selector, publicRecord(readKey(root, d, selector).privateKey));
    }),
  );
  addRootOption(
    dkim.command('use <domain> <selector>').description('sign with an existing key again (undo a rotate)'),
  ).action(
    action('dkim use', (domain: string, selector: string, flags: { root?: string }) => {
      const root = resolveRoot(flags.root);
      const d = checkDomain(domain);
      const s = checkSelector(selector);
      if (!listSelectors(root, d).includes(s))
        throw usageError(`${d} has no key with selector ${s}: quail dkim list shows the keys there are`);
      setActive(root, d, s, keyOwner(root));
      process.stdout.write(`${d} is signed with ${selector} from the next delivery\n`);
    }),
  );

  addRootOption(
    program
      .command('dns <domain>')
      .description('the DNS records the domain needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT) and what is published')
      .option('--no-check', 'only print the records, ask no resolver'),
  ).action(
    action('dns', async (domain: string, flags: { root?: string; check: boolean }) => {
      const root = resolveRoot(flags.root);
      const d = checkDomain(domain);
      const control = new Control(root);
      const me = control.me();
      if (me === null) throw usageError(`${control.path('me')} is missing: run quail init first`);
      const wanted = wantedRecords(d, me, keysOf(root, d), new Date());
      if (!wanted.some((w) => w.what === 'DKIM'))
        process.stdout.write(`# ${d} has no DKIM key yet: quail dkim keygen ${d} makes one (then run this again)\n`);
      let resolver: dnsPromises.Resolver | undefined;
      if (flags.check) {
        resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
        const servers = control.list('dnsservers').value;
        if (servers !== null && servers.length > 0) resolver.setServers(parseDnsServers(servers));
      }
      let problems = 0;
      let unreachable = false;
      for (const w of wanted) {
        process.stdout.write(`\n# ${w.what}: ${w.note}\n`);
        process.stdout.write(`${w.name}. IN ${w.type} ${w.type === 'TXT' ? zoneStrings(w.value) : w.value}\n`);
        if (resolver === undefined || unreachable) continue;
        const c = await checkRecord(w, resolver);
        const required = w.what !== 'MTA-STS' && w.what !== 'TLS-RPT';
        if (c.state === 'ok') process.stdout.write(`#   published: ${c.published}\n`);
        else if (c.state === 'missing') process.stdout.write(`#   NOT PUBLISHED${required ? '' : ' (optional)'}\n`);
        else if (c.state === 'different') process.stdout.write(`#   DIFFERENT, published: ${c.published}\n`);
        else {
          unreachable = true;
          process.stdout.write(`#   not checked: no answer from the resolver (${c.error}); the rest is not checked\n`);
        }
        if (required && (c.state === 'missing' || c.state === 'different')) problems++;
      }
      if (resolver !== undefined && !unreachable)
        process.stdout.write(
          `\n# ${problems === 0 ? 'all required records are published' : `${problems} required record(s) missing or different`}\n`,
        );
    }),
  );
}

function optionalOwner(root: string): { owner?: KeyOwner } {
  const o = keyOwner(root);
  return o !== undefined ? { owner: o } : {};
}
