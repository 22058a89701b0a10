// quail explain: the whole decision for one recipient — route, delivering user, .qmail file, instructions or next hop.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Command } from 'commander';
import { asciiLower, errText, QuailError } from '../core/index.js';
import { Control, controlDef } from '../control/index.js';
import { formatPolicy, locateDirectory, openDirectory, type Directory } from '../directory/index.js';
import { describeListAddress } from '../lists/index.js';
import { findDotQmail, newSender, parseInstructions, type Instruction } from '../local/index.js';
import { lookupRoute, ipLiteral } from '../remote/index.js';
import { route, routeControlFrom, stripVirtualPrefix, type RouteControl } from '../route/index.js';
import { lookupAssignment, systemPasswd, type Assignment, type PasswdSource } from '../users/index.js';
import { action, addRootOption, resolveRoot } from './common.js';
import { needRoot } from './showctl.js';
import { explainQueue } from './explain-queue.js';
import type { QueuePolicy } from '../queues/index.js';

export interface ExplainOptions {
  readonly root: string;
  readonly address: string;
  /** Envelope sender (default: none given, shown as a bounce destination placeholder). */
  readonly sender?: string;
  /** Account database (default: the system's, with control/quailuser standing in for `alias`). */
  readonly passwd?: PasswdSource;
  /** The listener (HOST:PORT) and AUTH login the message would come with (for the queue rules). */
  readonly listener?: string;
  readonly auth?: string;
}

const q = (s: string): string => JSON.stringify(s);

/** One line per instruction, in words; paths resolved against the home directory. */
function describe(ins: Instruction, home: string): string | null {
  const at = (p: string): string => (isAbsolute(p) ? p : join(home, p));
  switch (ins.kind) {
    case 'blank-first-line':
      return `line 1 is empty: the delivery defers until the file is fixed (D.6.2)`;
    case 'blank':
      return null;
    case 'comment':
      return `line ${ins.line}: comment`;
    case 'maildir':
      return `line ${ins.line}: deliver to the Maildir ${at(ins.path)}`;
    case 'mbox':
      return `line ${ins.line}: append to the mbox file ${at(ins.path)}`;
    case 'program':
      return `line ${ins.line}: run the program ${q(ins.command)} (exit 0 ok, 99 ok and stop, 100 bounce, else retry)`;
    case 'forward':
      return `line ${ins.line}: forward to ${q(ins.target)}`;
    case 'plus-list':
      return `line ${ins.line}: +list: from here on, forward only`;
    case 'plus-other':
      return `line ${ins.line}: ignored (${q(ins.text)})`;
  }
}

function instructionLines(text: string, home: string, out: string[]): void {
  const ins = parseInstructions(text);
  const lines = ins.map((i) => describe(i, home)).filter((l): l is string => l !== null);
  if (ins.length > 0 && ins.every((i) => i.kind === 'comment' || i.kind === 'blank')) {
    lines.push('only comments: the message is accepted and delivered nowhere');
  }
  out.push(...lines.map((l) => `    ${l}`));
}

function explainAssignment(a: Assignment, local: string): string {
  switch (a.via) {
    case 'simple':
      return `users/cdb simple assignment =${local} (key ${q(a.key ?? '')})`;
    case 'wildcard':
      return `users/cdb wildcard assignment +${(a.key ?? '').slice(1)} (the rest of the local part goes to ext)`;
    case 'passwd':
      return `no users/cdb match; the passwd account ${a.user} (uid not 0, home owned by it)`;
    case 'alias':
      return `no users/cdb match and no passwd account: the alias account (C.4.2)`;
  }
}

/** The recipient's domain and its address inside it, when the .qmail file hands it to `quail vdeliver`. */
interface VdeliverHandOff {
  readonly host: string;
  readonly ext: string;
}

/** A mailing list's `.qmail` file (src/lists): what the address does for the list, in words. */
function listLine(text: string, defaultPart: string, out: string[]): void {
  const m = /\|\s*quail list-(post|manage) '([^']*)' '([^']*)'/.exec(text);
  if (!m) return;
  const kind = m[1] === 'post' ? 'post' : 'manage';
  out.push(
    `  mailing list ${m[3] ?? ''}@${m[2] ?? ''}: ${describeListAddress(`${m[3] ?? ''}@${m[2] ?? ''}`, kind, defaultPart)}`,
  );
}

const runsVdeliver = (text: string): boolean =>
  parseInstructions(text).some(
    (i) => i.kind === 'program' && /(^|[\s/])(quail\s+vdeliver|vdelivermail)(\s|$)/.test(i.command),
  );

function explainLocal(
  o: ExplainOptions,
  control: Control,
  rc: RouteControl,
  channelAddress: string,
  out: string[],
  handOff: { value?: VdeliverHandOff },
): void {
  const at = channelAddress.lastIndexOf('@');
  const local = channelAddress.slice(0, at);
  const domain = channelAddress.slice(at + 1);
  if (local === '') {
    out.push('', 'empty local part: reported delivered, nothing is written (C.3.1)');
    return;
  }
  out.push('', 'delivering user:');
  let a: Assignment;
  try {
    a = lookupAssignment({ root: o.root, local, passwd: o.passwd ?? systemPasswd({ root: o.root }) });
  } catch (err) {
    if (!(err instanceof QuailError)) throw err;
    out.push(`  the delivery would defer: ${err.message}`);
    return;
  }
  out.push(`  ${explainAssignment(a, local)}`);
  out.push(`  user ${a.user}, uid ${a.uid}, gid ${a.gid}, home ${a.home}, dash ${q(a.dash)}, ext ${q(a.ext)}`);

  out.push('', '.qmail file:');
  const choice = findDotQmail(a.home, a.dash, a.ext);
  out.push(`  tried in order: ${choice.tried.map((t) => join(a.home, t)).join(', ')}`);
  if (choice.failure !== undefined) {
    out.push(`  the delivery would defer: ${choice.failure}`);
    return;
  }
  const bounceTo = o.sender === undefined ? 'the sender' : o.sender === '' ? 'postmaster (double bounce)' : o.sender;
  if (choice.file === null) {
    if (a.dash !== '') {
      out.push('  none exists: the recipient bounces with "Sorry, no mailbox here by that name. (#5.1.1)"');
      out.push(`  the bounce to ${bounceTo} names ${stripVirtualPrefix(channelAddress, rc)}`);
      return;
    }
    out.push('  none exists and dash is empty: control/defaultdelivery is used');
    instructionLines(defaultDelivery(control), a.home, out);
    return;
  }
  out.push(
    `  uses ${join(a.home, choice.file)}${choice.defaultPart !== undefined ? ` with DEFAULT=${q(choice.defaultPart)}` : ''}` +
      (choice.forwardOnly ? ' (owner-execute bit: forward only)' : ''),
  );
  const text = choice.text ?? '';
  if (text === '') {
    out.push('  the file is empty: control/defaultdelivery is used');
    instructionLines(defaultDelivery(control), a.home, out);
  } else instructionLines(text, a.home, out);
  listLine(text, choice.defaultPart ?? '', out);
  if (runsVdeliver(text)) {
    const host = asciiLower(o.address.slice(o.address.lastIndexOf('@') + 1));
    handOff.value = { host, ext: asciiLower(choice.defaultPart ?? a.ext) };
  }
  if (o.sender !== undefined && parseInstructions(text).some((i) => i.kind === 'forward')) {
    const ns = newSender(a.home, { dash: a.dash, ext: a.ext, local, domain, sender: o.sender });
    out.push('failure' in ns ? `  forwards would defer: ${ns.failure}` : `  forwards are sent from ${q(ns.sender)}`);
  }
}

function defaultDelivery(control: Control): string {
  const t = control.raw('defaultdelivery');
  if (t !== null) return t;
  const d = controlDef('defaultdelivery')?.default;
  return d?.from === 'literal' ? d.value : './Maildir/\n';
}

function explainRemote(control: Control, address: string, out: string[], policy: QueuePolicy | undefined): void {
  const host = address.slice(address.lastIndexOf('@') + 1);
  out.push('', 'next hop:');
  const routes = policy?.routes ?? control.map('smtproutes').value;
  const file =
    policy?.routes !== undefined ? `control/queues (queue ${policy.name}) route=` : 'control/smtproutes line';
  const r = lookupRoute(host, routes);
  const entry = r.pattern === undefined ? undefined : routes?.get(asciiLower(r.pattern));
  const where = entry ? `${file} ${entry.line} ${q(entry.text)}` : '';
  if (r.kind === 'relay') out.push(`  ${where}: relay ${r.relay} port ${r.port} (no MX lookup)`);
  else {
    if (entry) out.push(`  ${where} has an empty relay: no route`);
    else out.push(`  no control/smtproutes entry for ${q(host)}`);
    const ip = ipLiteral(host);
    out.push(
      ip !== null && host.startsWith('[')
        ? `  the IP literal ${ip} is used directly`
        : `  MX lookup for ${host} (A record if no MX)`,
    );
  }
}

/** The explanation, line by line. Throws only for a missing root or unreadable controls. */
export function explain(o: ExplainOptions): string[] {
  return explainRoute(o).lines;
}

function explainRoute(o: ExplainOptions): { lines: string[]; handOff?: VdeliverHandOff } {
  needRoot(o.root);
  const control = new Control(o.root);
  const rc = routeControlFrom(control);
  const d = route(o.address, rc);
  const out = [`recipient: ${o.address}`];
  if (o.sender !== undefined) out.push(`sender: ${o.sender === '' ? '<> (a bounce)' : o.sender}`);
  const policy = explainQueue(control, o, out);
  out.push('', 'route:', ...d.why.map((l) => `  ${l}`));
  const handOff: { value?: VdeliverHandOff } = {};
  if (d.channel === 'local') explainLocal(o, control, rc, d.address, out, handOff);
  else explainRemote(control, d.address, out, policy);
  return { lines: out, ...(handOff.value ? { handOff: handOff.value } : {}) };
}

/**
 * explain, and when the .qmail file hands the message to `quail vdeliver`, what the user directory says: the domain
 * and its policy, the mailbox (its Maildir and quota) or alias, and what RCPT TO gets (src/start/directory-link.ts
 * decides the same way at SMTP time).
 */
export async function explainAll(o: ExplainOptions): Promise<string[]> {
  const r = explainRoute(o);
  if (!r.handOff) return r.lines;
  return [
    ...r.lines,
    '',
    'user directory (quail vdeliver):',
    ...(await directoryLines(o.root, r.handOff)).map((l) => `  ${l}`),
  ];
}

async function directoryLines(root: string, h: VdeliverHandOff): Promise<string[]> {
  const loc = locateDirectory(root);
  if (loc.kind === 'sqlite' && !existsSync(loc.file)) return [`no user directory (${loc.file} does not exist)`];
  let dir: Directory;
  try {
    dir = await openDirectory({ root, readonly: true });
  } catch (err) {
    return [`the directory cannot be opened: ${errText(err)} (deliveries and RCPT checks would be retried)`];
  }
  try {
    const dom = await dir.resolveDomain(h.host);
    if (!dom) return [`${h.host} is not a domain of the directory: vdeliver would bounce the message`];
    const out = [
      `domain ${dom.name}${dom.name === h.host ? '' : ` (${h.host} is its alias domain)`}, policy for unknown addresses: ${formatPolicy(dom.policy)}`,
    ];
    const dash = h.ext.indexOf('-');
    const box =
      (await dir.getMailbox(dom.name, h.ext)) ??
      (dash > 0 ? await dir.getMailbox(dom.name, h.ext.slice(0, dash)) : null);
    if (box) {
      const quota =
        box.quotaBytes === null && box.quotaMessages === null
          ? 'no quota'
          : `quota ${box.quotaBytes === null ? 'unlimited' : `${box.quotaBytes} bytes`}, ${box.quotaMessages === null ? 'unlimited' : box.quotaMessages} messages`;
      out.push(
        `mailbox ${box.local}@${dom.name} exists${box.local === h.ext ? '' : ` (${h.ext} is its extension address)`}`,
      );
      out.push(
        `Maildir ${join(root, box.home, 'Maildir')}/${existsSync(join(root, box.home, 'Maildir', 'new')) ? '' : ' (missing: quail directory check --repair makes it)'}`,
      );
      out.push(quota);
      if (box.forward.length > 0)
        out.push(`forwards to ${box.forward.join(', ')}${box.keepCopy ? ' and keeps a copy' : ''}`);
      out.push('RCPT TO would be accepted (250)');
      return out;
    }
    const alias = await dir.getAlias(dom.name, h.ext);
    if (alias) {
      out.push(`alias ${alias.local}@${dom.name} -> ${alias.targets.join(', ')}`, 'RCPT TO would be accepted (250)');
      return out;
    }
    out.push(`no mailbox or alias ${h.ext}@${dom.name}`);
    out.push(
      dom.policy.kind === 'bounce-no-mailbox'
        ? `RCPT TO would get 550 5.1.1 (the domain's policy is bounce-no-mailbox); add it with quail user add ${h.ext}@${dom.name}`
        : `RCPT TO would be accepted: the domain's policy ${formatPolicy(dom.policy)} takes it`,
    );
    return out;
  } finally {
    await dir.close();
  }
}

export function register(program: Command): void {
  addRootOption(
    program
      .command('explain <address>')
      .description('explain what quail would do with one recipient: route, user, .qmail file, instructions or next hop')
      .option('--sender <address>', 'envelope sender (for forwards, bounces and the queue rules)')
      .option('--listener <host:port>', 'the listener it comes in on (for the queue rules)')
      .option('--auth <login>', 'the AUTH login it is sent with (for the queue rules)'),
  ).action(
    action(
      'explain',
      async (address: string, o: { root?: string; sender?: string; listener?: string; auth?: string }) => {
        const root = resolveRoot(o.root);
        try {
          const lines = await explainAll({
            root,
            address,
            ...(o.sender === undefined ? {} : { sender: o.sender }),
            ...(o.listener === undefined ? {} : { listener: o.listener }),
            ...(o.auth === undefined ? {} : { auth: o.auth }),
          });
          process.stdout.write(`${lines.join('\n')}\n`);
        } catch (err) {
          if (err instanceof QuailError) throw err;
          throw new QuailError(`cannot explain ${address}: ${errText(err)}`, true);
        }
      },
    ),
  );
}
