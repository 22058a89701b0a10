// MAIL and RCPT: the envelope, read strictly (RFC 5321) or as qmail does (QUAIL_LOOSE), and the checks on it (B.3, B.5).
import { errText } from '../core/index.js';
import { addressTooLong, parseEnvelopeArg } from './address.js';
import { OWN_ADDRESS_ONLY } from './auth.js';
import { R, senderNotOwned, type Reply } from './replies.js';
import type { Session, Step } from './session.js';
import { parseStrictMail, parseStrictRcpt } from './strict.js';

export async function mailCommand(s: Session, arg: string, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  if (!s.mayBeginMail()) return 'no-message';
  // A listener's tls=required: nothing is accepted in clear (RFC 3207 4: 530 5.7.0).
  if (s.policy.tlsRequired && !s.secure) return fail(R.tlsRequired);
  const needAuth = s.deps.kind === 'submission' || s.policy.auth === 'required';
  if (needAuth && s.authUser === undefined && s.policy.relayClient === undefined) {
    return fail(R.authRequired);
  }
  // RFC 5321 4.1.4: no MAIL inside a transaction (qmail, with QUAIL_LOOSE, lets the new MAIL replace it)
  if (s.mail && !s.policy.loose) return fail(R.nestedMail);
  let address: string;
  let size: number | undefined;
  if (s.policy.loose) {
    // qmail-smtpd reads no ESMTP parameter: SIZE is not looked at (nor refused over databytes) here
    address = parseEnvelopeArg(arg).address;
  } else {
    const parsed = parseStrictMail(arg);
    if (!parsed.ok) return fail(parsed.reply);
    ({ address, size } = parsed);
    // 20 digits are legal (RFC 1870) but no message is that big, whatever databytes says (2^64+1 must not wrap)
    if (size !== undefined && size > Number.MAX_SAFE_INTEGER) return fail(R.tooBig);
  }
  const sender = s.policy.localIpHost(address);
  if (addressTooLong(sender)) return fail(R.syntax);
  // RFC 1870 6.1: refuse at MAIL when the announced size is already over the limit.
  if (size !== undefined && s.policy.databytes > 0 && size > s.policy.databytes) return fail(R.tooBig);
  if (s.authUser !== undefined && s.deps.senderAuth !== false) {
    const refused = await senderRefusal(s, s.authUser, sender);
    if (refused) return fail(refused);
  }
  s.mail = { sender, recipients: [], badSender: s.policy.badMailFrom(sender), ...(size !== undefined ? { size } : {}) };
  s.unsent++;
  s.progress();
  s.send(R.mailOk);
  return 'continue';
}

/** Issue 12: an authenticated login sends only as itself (its addresses, aliases, what it administers). */
async function senderRefusal(s: Session, login: string, sender: string): Promise<Reply | undefined> {
  let verdict;
  try {
    verdict = await (s.deps.senders ?? OWN_ADDRESS_ONLY).mayUse(login, sender);
  } catch {
    verdict = 'temporary' as const;
  }
  if (verdict === 'allow') return undefined;
  s.deps.log('smtp.reject', {
    ip: s.remoteIp,
    why: verdict === 'deny' ? 'sender-not-login' : 'sender-check-unavailable',
    auth: login,
    from: sender,
  });
  return verdict === 'deny' ? senderNotOwned(login, sender) : R.senderTemporary;
}

export async function rcptCommand(s: Session, arg: string, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  const tx = s.mail;
  if (!tx) return fail(R.mailFirst);
  let parsed: { readonly address: string };
  if (s.policy.loose) parsed = parseEnvelopeArg(arg);
  else {
    const strict = parseStrictRcpt(arg);
    if (!strict.ok) return fail(strict.reply);
    parsed = strict;
  }
  let addr = s.policy.localIpHost(parsed.address);
  if (addressTooLong(addr)) return fail(R.syntax);
  if (tx.badSender) {
    s.deps.log('smtp.reject', { ip: s.remoteIp, why: 'badmailfrom', from: tx.sender, to: addr });
    return fail(R.badMailFrom);
  }
  const relay = s.policy.relayClient;
  let allowed: boolean;
  try {
    allowed = relay !== undefined || s.authRelay || s.policy.rcptAllowed(addr);
  } catch (err) {
    // morercpthosts.cdb damaged or unreadable mid-session: qmail-smtpd's die_control().
    s.deps.log('smtp.error', { ip: s.remoteIp, error: errText(err) });
    s.send(R.controls);
    return 'no-controls';
  }
  if (!allowed) {
    s.deps.log('smtp.reject', { ip: s.remoteIp, why: 'rcpthosts', from: tx.sender, to: addr });
    return fail(R.noGateway);
  }
  // Directory-managed domains: an unknown mailbox is refused now rather than bounced later (no backscatter).
  if (s.deps.recipients) {
    const verdict = await s.deps.recipients.check(addr, { ip: s.remoteIp });
    if (verdict !== 'accept') {
      const [why, reply] =
        verdict === 'unknown'
          ? (['no-mailbox', R.noMailbox] as const)
          : verdict === 'not-here'
            ? (['not-this-office', R.notThisOffice] as const)
            : (['directory-unavailable', R.directoryTemporary] as const);
      s.deps.log('smtp.reject', { ip: s.remoteIp, why, from: tx.sender, to: addr });
      return fail(reply);
    }
  }
  if (relay !== undefined) addr += relay;
  if (tx.recipients.length >= s.deps.limits.maxRcpt) return fail(R.tooManyRcpts);
  // qmail's tarpit patch (TARPITCOUNT, TARPITDELAY): a client sending to many recipients is slowed down.
  const { tarpitCount, tarpitDelay } = s.policy;
  if (tarpitCount > 0 && tx.recipients.length >= tarpitCount && tarpitDelay > 0)
    await new Promise((r) => setTimeout(r, Math.min(tarpitDelay, 300) * 1000));
  tx.recipients.push(addr);
  s.progress();
  s.send(R.rcptOk);
  return 'continue';
}
