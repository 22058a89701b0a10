// quail list-manage: every `LIST-...` address (ezmlm-manage, ezmlm-return, ezmlm-moderate in one).
import { memberAddress } from '../directory/index.js';
import { errText } from '../core/index.js';
import { encodeAddress, parseRequest } from './address.js';
import { checkCookie, makeCookie } from './cookie.js';
import { addressOf, bounceTo, claimHeld, distribute, type ProgramCtx, type ProgramResult } from './post.js';
import { oneLine } from './message.js';

const isBounceSender = (s: string): boolean => s === '' || s === '#@[]' || /^mailer-daemon@/i.test(s);

function helpText(c: ProgramCtx): string {
  const l = c.list;
  return (
    `This is the list ${addressOf(l)}${l.options.description !== '' ? ` (${l.options.description})` : ''}.\n\n` +
    `To subscribe, send a message to:\n    ${addressOf(l, '-subscribe')}\n` +
    `To unsubscribe, send a message to:\n    ${addressOf(l, '-unsubscribe')}\n` +
    `Either is confirmed by a reply to the address the answer gives.\n` +
    `To subscribe another address, e.g. joe@example.org: ${addressOf(l, '-subscribe-joe=example.org')}\n` +
    `To post, write to:\n    ${addressOf(l)}\n` +
    `To reach the list's owner:\n    ${addressOf(l, '-owner')}\n`
  );
}

/** A confirmation request to the address concerned (never to the sender, who may be someone else). */
async function ask(c: ProgramCtx, action: 'sc' | 'uc', raw: string): Promise<ProgramResult> {
  let target: string;
  try {
    target = memberAddress(raw);
  } catch (err) {
    return { exit: 100, text: `${errText(err)}. (#5.1.3)` };
  }
  const l = c.list;
  const confirm = addressOf(l, `-${action}.${makeCookie(l.secret, action, target, c.now)}-${encodeAddress(target)}`);
  const what = action === 'sc' ? 'subscribe' : 'unsubscribe';
  await c.outbox.reply({
    sender: bounceTo(l),
    to: target,
    from: `<${addressOf(l, '-help')}>`,
    subject: `confirm ${what} to ${addressOf(l)}`,
    extra: [`Reply-To: <${confirm}>`],
    text:
      `Someone (perhaps you) asked to ${what} the address\n    ${target}\n${action === 'sc' ? 'to' : 'from'} the list ${addressOf(l)}.\n\n` +
      `To confirm, reply to this message, or send an empty message to:\n    ${confirm}\n\n` +
      `This address works for 10 days. If you did not ask, ignore this message.\n\n${helpText(c)}`,
  });
  return { exit: 0, text: `list ${addressOf(l)}: ${what} confirmation sent to ${target}` };
}

async function confirm(c: ProgramCtx, action: 'sc' | 'uc', cookie: string, address: string): Promise<ProgramResult> {
  const l = c.list;
  const a = await c.writer.apply({ op: 'confirm', domain: l.domain, list: l.local, action, address, cookie });
  const again = addressOf(l, action === 'sc' ? '-subscribe' : '-unsubscribe');
  if (!a.ok)
    return a.permanent
      ? { exit: 100, text: `Not done: ${a.text}. Send a new request to ${again}. (#5.7.1)` }
      : { exit: 111, text: `${a.text}. (#4.3.0)` };
  const target = address.toLowerCase();
  const said: Record<string, [string, string]> = {
    subscribed: [`WELCOME to ${addressOf(l)}`, `The address ${target} is now subscribed to ${addressOf(l)}.\n\n`],
    'already-subscribed': [`${addressOf(l)}: already subscribed`, `The address ${target} was already subscribed.\n\n`],
    unsubscribed: [
      `GOODBYE from ${addressOf(l)}`,
      `The address ${target} is no longer subscribed to ${addressOf(l)}.\n\n`,
    ],
    'not-subscribed': [`${addressOf(l)}: not subscribed`, `The address ${target} was not subscribed.\n\n`],
  };
  const [subject, text] = said[a.outcome] ?? [addressOf(l), ''];
  await c.outbox.reply({
    sender: bounceTo(l),
    to: target,
    from: `<${addressOf(l, '-help')}>`,
    subject,
    text: text + helpText(c),
  });
  return { exit: 0, text: `list ${addressOf(l)}: ${target} ${a.outcome}` };
}

async function tellOwners(c: ProgramCtx, subject: string, text: string): Promise<void> {
  const l = c.list;
  for (const o of await c.lists.members(l.domain, l.local, 'owner'))
    await c.outbox.reply({ sender: bounceTo(l), to: o.address, from: `<${addressOf(l, '-help')}>`, subject, text });
}

/** A bounce to `LIST-return-N-user=host@` (VERP) or `LIST-return-probe-user=host@` (README: Bounces). */
async function bounced(c: ProgramCtx, post: number | 'probe' | null, address: string | null): Promise<ProgramResult> {
  const l = c.list;
  if (post === null || address === null)
    return { exit: 0, text: `list ${addressOf(l)}: bounce without an address, dropped` };
  const a = await c.writer.apply({ op: 'bounce', domain: l.domain, list: l.local, address, post });
  if (!a.ok)
    return a.permanent
      ? { exit: 0, text: `list ${addressOf(l)}: bounce ignored: ${a.text}` }
      : { exit: 111, text: a.text };
  const who = address.toLowerCase();
  if (a.outcome === 'probe') {
    await c.outbox.reply({
      sender: addressOf(l, `-return-probe-${encodeAddress(who)}`),
      to: who,
      from: `<${addressOf(l, '-help')}>`,
      subject: `${addressOf(l)}: messages to you are bouncing`,
      text:
        `Messages from ${addressOf(l)} to ${who} have been bouncing (${a.bounces ?? 1} so far).\n` +
        `This is a probe: if it bounces too, the address is removed from the list.\n\n${helpText(c)}`,
    });
  } else if (a.outcome === 'removed') {
    await tellOwners(
      c,
      `${addressOf(l)}: ${who} removed (bouncing)`,
      `Mail from ${addressOf(l)} to ${who} kept bouncing and the probe bounced too, so the address was removed.\n`,
    );
  }
  return { exit: 0, text: `list ${addressOf(l)}: bounce from ${who}: ${a.outcome}` };
}

async function moderate(c: ProgramCtx, kind: 'accept' | 'reject', id: string, cookie: string): Promise<ProgramResult> {
  const l = c.list;
  const ok = checkCookie(l.secret, kind, id, cookie, c.now);
  if (ok !== 'ok')
    return {
      exit: 100,
      text: `This ${kind} address is ${ok === 'expired' ? 'older than 14 days' : 'not valid (changed or made up)'}. (#5.7.1)`,
    };
  const held = claimHeld(c, id);
  if (held === null) return { exit: 100, text: `The post ${id} is no longer waiting (already decided?). (#5.7.1)` };
  try {
    if (kind === 'accept') {
      const r = await distribute(c, held.data);
      if (r.exit === 0) held.done();
      else held.release();
      return { exit: r.exit, text: `accepted ${id}: ${r.text}` };
    }
    if (!isBounceSender(held.sender))
      await c.outbox.reply({
        sender: bounceTo(l),
        to: held.sender,
        from: `<${addressOf(l, '-help')}>`,
        subject: `${addressOf(l)}: your post was not accepted`,
        text: `A moderator of ${addressOf(l)} did not accept your post.\n`,
      });
    held.done();
  } catch (err) {
    held.release();
    throw err;
  }
  return { exit: 0, text: `list ${addressOf(l)}: post ${id} rejected` };
}

/** Runs one `LIST-EXT` request (EXT: qmail-local's DEFAULT). */
export async function manage(c: ProgramCtx, ext: string, data: Buffer): Promise<ProgramResult> {
  const r = parseRequest(ext);
  const l = c.list;
  const sender = c.sender;
  switch (r.kind) {
    case 'help':
      if (isBounceSender(sender)) return { exit: 0, text: 'help request from a bounce: not answered' };
      await c.outbox.reply({
        sender: bounceTo(l),
        to: sender,
        from: `<${addressOf(l, '-help')}>`,
        subject: `${addressOf(l)}: help`,
        text: helpText(c),
      });
      return { exit: 0, text: `list ${addressOf(l)}: help sent to ${sender}` };
    case 'subscribe':
    case 'unsubscribe':
      if (r.address === undefined && isBounceSender(sender))
        return { exit: 0, text: 'request from a bounce: not answered' };
      return ask(c, r.kind === 'subscribe' ? 'sc' : 'uc', r.address ?? sender);
    case 'sc':
    case 'uc':
      return confirm(c, r.kind, r.cookie, r.address);
    case 'accept':
    case 'reject':
      return moderate(c, r.kind, r.id, r.cookie);
    case 'return':
      return bounced(c, r.post, r.address);
    case 'owner': {
      const owners = await c.lists.members(l.domain, l.local, 'owner');
      if (owners.length === 0)
        return { exit: 100, text: `The list ${addressOf(l)} has no owner to pass this to. (#5.1.1)` };
      for (const o of owners) await c.outbox.copy(bounceTo(l), o.address, data);
      return { exit: 0, text: `list ${addressOf(l)}: passed to its owners` };
    }
    case 'unknown':
      return {
        exit: 100,
        text: `${oneLine(addressOf(l, `-${r.text}`), 300)} is not a command of this list; send a message to ${addressOf(l, '-help')} for the commands. (#5.1.1)`,
      };
  }
}
