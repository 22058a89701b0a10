// ETRN (RFC 1985): a client asks that the mail held for its domain be sent now. smtpd parses and answers; the
// held-mail service behind the EtrnService interface (filled in by src/start) decides and starts the push.
import type { Reply } from './replies.js';
import type { Session, Step } from './session.js';

/** The node an ETRN names (RFC 1985 section 3): a domain, `@domain` (it and its subdomains) or `#queue`. */
export interface EtrnNode {
  readonly kind: 'domain' | 'subdomains' | 'queue';
  /** The name without `@` or `#`, lower-cased. */
  readonly name: string;
  /** As the client wrote it (for the reply). */
  readonly text: string;
}

/** The service's answer (RFC 1985 section 5). */
export type EtrnAnswer =
  | { readonly kind: 'started' } // 250 OK, queuing for node <x> started
  | { readonly kind: 'none' } // 251 OK, no messages waiting for node <x>
  | { readonly kind: 'pending'; readonly count?: number } // 252, or 253 with the count
  | { readonly kind: 'unable'; readonly why: string } // 458 Unable to queue messages for node <x>
  | { readonly kind: 'refused'; readonly why: string }; // 459 Node <x> not allowed: <reason>

export interface EtrnService {
  /** `clientIp` asked for `node`; `allowed` is true when tcp.smtp gives that client QUAIL_ETRN="1". */
  request(node: EtrnNode, client: { readonly ip: string; readonly allowed: boolean }): Promise<EtrnAnswer>;
}

/**
 * AutoTURN: told when a session on an `smtp` listener ends, with the client's address; the held-mail service behind
 * it (filled in by src/start) pushes the held mail of domains that list that address. Must not throw or block: the
 * session is already over and nothing waits for the push.
 */
export interface AutoTurnHook {
  sessionEnded(ip: string): void;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;

/** Parses ETRN's argument; undefined = a syntax error in the parameter (501). */
export function parseEtrnNode(arg: string): EtrnNode | undefined {
  const text = arg.trim();
  if (text === '' || /\s/.test(text) || text.length > 255) return undefined;
  const kind = text.startsWith('@') ? 'subdomains' : text.startsWith('#') ? 'queue' : 'domain';
  const name = (kind === 'domain' ? text : text.slice(1)).replace(/\.$/, '').toLowerCase();
  if (kind === 'queue' ? !/^[A-Za-z0-9._-]{1,64}$/.test(name) : !NAME.test(name)) return undefined;
  return { kind, name, text };
}

/** The reply for an answer; `text` is the node as the client wrote it. */
export function etrnReply(a: EtrnAnswer, text: string): Reply {
  switch (a.kind) {
    case 'started':
      return [250, '2.0.0', `OK, queuing for node ${text} started`];
    case 'none':
      return [251, '2.0.0', `OK, no messages waiting for node ${text}`];
    case 'pending':
      return a.count === undefined
        ? [252, '2.0.0', `OK, pending messages for node ${text} started`]
        : [253, '2.0.0', `OK, ${a.count} pending messages for node ${text} started`];
    case 'unable':
      return [458, '4.3.0', `Unable to queue messages for node ${text}: ${a.why}`];
    case 'refused':
      return [459, '4.7.1', `Node ${text} not allowed: ${a.why}`];
  }
}

/**
 * ETRN: after HELO/EHLO and outside a mail transaction (RFC 1985 section 3), one node per command. Counted as a
 * command that moves no mail (limits.maxNoop bounds how many a session may send); the service rate-limits per node.
 */
export async function etrnCommand(s: Session, arg: string, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  const service = s.deps.etrn;
  if (service === undefined) return fail([502, '5.5.1', 'unimplemented (#5.5.1)']);
  if (s.helo === undefined) return fail([503, '5.5.1', 'send HELO or EHLO first (#5.5.1)']);
  if (s.mail !== undefined) return fail([503, '5.5.1', 'ETRN is not allowed during a mail transaction (#5.5.1)']);
  const node = parseEtrnNode(arg);
  if (node === undefined) return fail([501, '5.5.4', 'Syntax Error in Parameters: ETRN domain, @domain or #queue']);
  if (!s.stall()) return 'no-progress';
  let answer: EtrnAnswer;
  try {
    answer = await service.request(node, { ip: s.remoteIp, allowed: s.deps.env['QUAIL_ETRN'] === '1' });
  } catch {
    answer = { kind: 'unable', why: 'temporary problem, try again later' };
  }
  const reply = etrnReply(answer, node.text);
  if (reply[0] >= 400) return fail(reply);
  s.send(reply);
  return 'continue';
}
