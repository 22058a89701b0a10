// Every reply text the SMTP engine sends: qmail's exact words (docs/QMAIL.md B.6-B.9), quail's additions marked.
import { QuailError } from '../core/index.js';
import type { DataProblem } from './data.js';

/** code, RFC 3463 enhanced code ('' = none: greeting, EHLO, 354), text. */
export type Reply = readonly [number, string, string];

export const R = {
  ok: [250, '2.0.0', 'ok'],
  mailOk: [250, '2.1.0', 'ok'],
  rcptOk: [250, '2.1.5', 'ok'],
  flushed: [250, '2.0.0', 'flushed'],
  vrfy: [252, '2.0.0', "send some mail, i'll try my best"],
  help: [214, '2.0.0', 'notqmail home page: https://notqmail.org'],
  unimplemented: [502, '5.5.1', 'unimplemented (#5.5.1)'],
  syntax: [555, '5.5.4', 'syntax error (#5.5.4)'],
  mailFirst: [503, '5.5.1', 'MAIL first (#5.5.1)'],
  rcptFirst: [503, '5.5.1', 'RCPT first (#5.5.1)'],
  noGateway: [553, '5.7.1', "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"],
  badMailFrom: [553, '5.7.1', 'sorry, your envelope sender is in my badmailfrom list (#5.7.1)'],
  goAhead: [354, '', 'go ahead'],
  tooBig: [552, '5.3.4', 'sorry, that message size exceeds my databytes limit (#5.3.4)'],
  headerTooLarge: [
    552,
    '5.3.4',
    'sorry, the header section of that message is over 1 MiB, more than this server checks; shorten it (#5.3.4)',
  ],
  hops: [554, '5.4.6', 'too many hops, this message is looping (#5.4.6)'],
  bareLf: [451, '4.6.0', 'See https://cr.yp.to/docs/smtplf.html.'],
  timeout: [451, '4.4.2', 'timeout (#4.4.2)'],
  controls: [421, '4.3.0', 'unable to read controls (#4.3.0)'],
  qqTemporary: [451, '4.3.0', 'qq temporary problem (#4.3.0)'],
  // quail's additions (not in qmail): strict CRLF, limits, STARTTLS, AUTH, submission.
  bareCr: [554, '5.6.0', 'sorry, the message contains a bare CR; lines must end in CRLF (#5.6.0)'],
  nul: [554, '5.6.0', 'sorry, the message contains a NUL byte (#5.6.0)'],
  badCommandBytes: [501, '5.5.2', 'syntax error: bare CR or NUL in a command line (#5.5.2)'],
  lineTooLong: [500, '5.5.2', 'line too long (#5.5.2)'],
  tooManyRcpts: [452, '4.5.3', 'too many recipients for one message, send the rest separately (#4.5.3)'],
  tooManyErrors: [421, '4.7.0', 'too many errors, closing the connection (#4.7.0)'],
  noProgress: [421, '4.7.0', 'too many commands without sending mail, closing the connection (#4.7.0)'],
  noMessage: [421, '4.7.0', 'too many mail transactions without a message accepted, closing the connection (#4.7.0)'],
  tooManyConnections: [421, '4.7.0', 'too many connections, try again later (#4.7.0)'],
  tooManyFromIp: [421, '4.7.0', 'too many connections from your address, try again later (#4.7.0)'],
  denied: [554, '5.7.1', 'sorry, this host may not use this server (#5.7.1)'],
  shuttingDown: [421, '4.3.2', 'server shutting down, try again later (#4.3.2)'],
  tlsReady: [220, '2.0.0', 'ready to start TLS'],
  tlsAlready: [503, '5.5.1', 'TLS is already active (#5.5.1)'],
  authRequired: [530, '5.7.0', 'authentication required (#5.7.0)'],
  tlsRequired: [530, '5.7.0', 'Must issue a STARTTLS command first (#5.7.0)'],
  authNeedsTls: [538, '5.7.11', 'encryption required for authentication, use STARTTLS first (#5.7.11)'],
  authNoTls: [
    538,
    '5.7.11',
    'encryption required for authentication, and this server offers no STARTTLS: ask its administrator (#5.7.11)',
  ],
  authTooManyFailures: [
    421,
    '4.7.0',
    'too many failed authentication attempts, closing the connection; try again later (#4.7.0)',
  ],
  authOk: [235, '2.7.0', 'authentication successful'],
  authFailed: [535, '5.7.8', 'authentication failed (#5.7.8)'],
  authUnavailable: [454, '4.7.0', 'temporary authentication failure (#4.7.0)'],
  authCancelled: [501, '5.0.0', 'authentication cancelled (#5.0.0)'],
  authMalformed: [501, '5.5.2', 'malformed authentication response (#5.5.2)'],
  authMechanism: [504, '5.5.4', 'unrecognized authentication type, use PLAIN or LOGIN (#5.5.4)'],
  noMailbox: [550, '5.1.1', 'sorry, no mailbox here by that name (#5.1.1)'],
  directoryTemporary: [451, '4.3.0', 'temporary failure looking up the mailbox, try again later (#4.3.0)'],
  notThisOffice: [
    451,
    '4.3.0',
    "that mailbox is not at this office: keep the message and send it to the mailbox's office (#4.3.0)",
  ],
  senderTemporary: [451, '4.3.0', 'temporary failure checking the sender against your login, try again later (#4.3.0)'],
  authTwice: [503, '5.5.1', 'already authenticated (#5.5.1)'],
  authInMail: [503, '5.5.1', 'AUTH is not allowed during a mail transaction (#5.5.1)'],
  nestedMail: [503, '5.5.1', 'a mail transaction is already open: finish it with DATA or send RSET first (#5.5.1)'],
} as const satisfies Record<string, Reply>;

/** Issue 12: an authenticated client used an envelope sender that is not its own; the reply names the login. */
export function senderNotOwned(login: string, sender: string): Reply {
  return [
    553,
    '5.7.1',
    `sorry, ${login} may not send as <${sender}>: use your own address or one of its aliases (#5.7.1)`,
  ];
}

export function problemReply(p: DataProblem): Reply {
  switch (p) {
    case 'bare-lf':
      return R.bareLf;
    case 'bare-cr':
      return R.bareCr;
    case 'nul':
      return R.nul;
    case 'too-big':
      return R.tooBig;
    case 'too-many-hops':
      return R.hops;
  }
}

/** A queue failure as the client sees it (B.7: 554 permanent, 451 temporary; unknown errors temporary). */
export function queueFailureReply(err: unknown): Reply {
  if (!(err instanceof QuailError)) return R.qqTemporary;
  const text = /\(#\d\.\d+\.\d+\)$/.test(err.message) ? err.message : `${err.message} (#${err.code})`;
  return err.temporary ? [451, err.code, text] : [554, err.code, text];
}

/** One reply line; the enhanced code is shown only after EHLO (RFC 2034 section 3). */
export function renderReply(r: Reply, enhanced: boolean): string {
  const [code, enh, text] = r;
  return `${code} ${enhanced && enh !== '' ? `${enh} ` : ''}${text}\r\n`;
}
