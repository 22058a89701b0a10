// Before the 220: the listener's DNS blocklists (rblsmtpd) and greeting delay (qmail's greetdelay patch).
import { envNumber } from './policy.js';
import { rblConversation, rblVerdict, type RblConfig, type RblVerdict } from './rbl.js';
import type { EndReason, Session } from './session.js';

/** The longest greeting delay honoured (seconds): past it a client gives up anyway (RFC 5321 4.5.3.2.1: 5 min). */
const MAX_GREETDELAY = 300;

/**
 * Runs what comes before the greeting: the blocklist lookups start at once; GREETDELAY (listener `greetdelay=`,
 * tcp.smtp per client) is waited meanwhile, and a client that sends anything in it gets `554` and is dropped. A
 * client the lists block gets rblsmtpd's limited conversation instead of the session. 'serve' = go on and greet.
 */
export async function beforeGreeting(s: Session, rbl: RblConfig | undefined): Promise<'serve' | EndReason> {
  const env = s.deps.env;
  const verdict: Promise<RblVerdict> | undefined =
    rbl === undefined ? undefined : rblVerdict(env, rbl).catch(() => ({ block: false }) as const);
  const delay = Math.min(envNumber(env['GREETDELAY']) ?? 0, MAX_GREETDELAY);
  if (delay > 0) {
    const early = await s.reader.chunk(delay * 1000);
    if (early === 'eof') return 'eof';
    if (early !== 'timeout') {
      s.deps.log('smtp.refused', { ip: s.remoteIp, why: 'pre-greet', listener: s.deps.listener });
      s.sendRaw('554 5.5.0 SMTP protocol violation: the client talked before the greeting\r\n');
      return 'pre-greet';
    }
  }
  if (verdict === undefined || rbl === undefined) return 'serve';
  const v = await verdict;
  if (!v.block) {
    if (v.why !== undefined) s.deps.log('smtp.rbl', { ip: s.remoteIp, listed: false, why: v.why });
    return 'serve';
  }
  s.deps.log('smtp.refused', { ip: s.remoteIp, why: 'rbl', listener: s.deps.listener, reply: v.reply, by: v.why });
  const end = await rblConversation(
    s.reader,
    (text) => s.sendRaw(text),
    v.reply,
    s.policy.greeting,
    rbl.timeoutSeconds,
  );
  return end === 'quit' ? 'quit' : end === 'eof' ? 'eof' : 'rbl';
}
