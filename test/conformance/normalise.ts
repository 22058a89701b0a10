// The ONE place where quail's output is normalised towards qmail's where quail deliberately says more.
//
// Every rule here names the difference and why it is deliberate. Nothing else in the runner may paper over
// a difference; anything not listed must match the oracle exactly.

/**
 * quail newu on a malformed users/assign.
 *   qmail-newu: `qmail-newu: fatal: bad format in users/assign\n` (exit 111)
 *   quail:      `quail newu: fatal: bad format in users/assign line N: <what>; the old users/cdb is kept\n` (exit 111)
 * Why: the administrator is told which line is wrong and what is wrong with it, and that nothing was changed.
 * Only the prefix and the added detail are mapped; exit code, stdout and the cdb bytes are compared as they are.
 */
export function normaliseNewuStderr(stderr: string): string {
  return stderr.replace(
    /^quail newu: fatal: bad format in users\/assign line \d+: [^\n]*; the old users\/cdb is kept$/gm,
    'qmail-newu: fatal: bad format in users/assign',
  );
}

/**
 * SMTP (kind smtp): quail's EHLO reply advertises more extensions than qmail's `PIPELINING` and `8BITMIME`
 * (SIZE, ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS, AUTH). Why: the issue asks for them (RFC 1870, 2034, 6531,
 * 3207, 4954). The extra lines are dropped and the last remaining line gets the final `250 ` separator.
 */
export function normaliseSmtpEhlo(output: string): string {
  return output.replace(
    /250-([^\r\n]*)\r\n250-PIPELINING\r\n250[- ]8BITMIME\r\n(?:250-[^\r\n]*\r\n)*(?:250 [^\r\n]*\r\n)?/g,
    (_block, greeting: string) => `250-${greeting}\r\n250-PIPELINING\r\n250 8BITMIME\r\n`,
  );
}

/**
 * SMTP: after EHLO quail puts an RFC 3463 enhanced status code after each reply code (`250 2.1.0 ok`), as
 * ENHANCEDSTATUSCODES (RFC 2034 section 3) requires once advertised; qmail never does. The code is removed.
 */
export function normaliseSmtpEnhancedCodes(output: string): string {
  return output.replace(/^(\d{3}[ -])[245]\.\d{1,3}\.\d{1,3} /gm, '$1');
}

/**
 * SMTP: the reply after DATA names quail's queue id where qmail names the pid of qmail-queue
 * (`250 ok <time> qp <id>`). Why: the id is what the administrator can look up in the queue and the log.
 */
export function normaliseSmtpQueueId(output: string): string {
  return output.replace(/^250 ok \d+ qp [^\s]+\r$/gm, '250 ok @TIME@ qp @QP@\r');
}

/**
 * SMTP: the Received line names the RFC 3848 protocol (`with ESMTP`, `ESMTPS` with TLS, `ESMTPA` with AUTH,
 * `ESMTPSA`) where qmail always writes `with SMTP`. Why: RFC 3848; receivers and filters use it.
 */
export function normaliseReceivedProtocol(message: string): string {
  return message.replace(/^( {2}by [^\n]* with )ESMTPS?A?;/gm, '$1SMTP;');
}

/**
 * delivery (remote sinks): quail's SMTP client opens with `EHLO <helohost>` (falling back to HELO only when
 * refused) where qmail-remote always sends `HELO <helohost>` (docs/QMAIL.md E.5). Why: EHLO is what STARTTLS,
 * SIZE and 8BITMIME need (RFC 5321 4.1.1.1). The sink records the argument of either verb as `helo`; the verb
 * itself is not compared.
 */
export function heloArgument(line: string): string {
  return line.replace(/^(?:HELO|EHLO) ?/i, '');
}

/**
 * SMTP (kind smtp), session environment: every session runs with `QUAIL_BARECR=keep` and `QUAIL_LOOSE=1` added to
 * its env: the two per-client opt-outs of control/tcp.smtp that give back qmail-smtpd's behaviour.
 *
 * QUAIL_LOOSE=1 — envelope arguments as qmail-smtpd reads them (docs/QMAIL.md B.1):
 *   qmail-smtpd: `MAIL FROM:a@b.test` (no <>), `RCPT TO:joe4@local.test trailing`, `<jo\e3@local.test>`, unknown
 *                parameters, and a second MAIL inside a transaction all get 250 (smtp-017, smtp-023).
 *   quail (default): RFC 5321 4.1.2 syntax (`501 5.1.7`/`501 5.1.3` saying what is wrong), parameters of the
 *                advertised extensions only (`555 5.5.4`), no MAIL inside a transaction (`503 5.5.1`).
 * Why: the loose forms are how forged and malformed envelopes get past checks that read the address another
 * way; the RFC form is what every current client sends. Nothing else changes with it (databytes, the
 * no-progress limit, AUTH rules stay as they are; the scenarios never reach them).
 *
 * QUAIL_BARECR=keep:
 *   qmail-smtpd: a CR not followed by LF inside DATA is kept in the message (smtp-021: `line with\rCR inside`).
 *   quail (default): such a message is refused with `554 5.6.0` after the final dot.
 * Why: quail's default refuses a bare CR against SMTP smuggling (a lone CR passed on is the `<CR>.<CR>`
 * vector against receivers that end DATA on it); the qmail-compatible behaviour is a per-client opt-out set
 * in control/tcp.smtp (`127.:allow,QUAIL_BARECR="keep"`), which is what the oracle's behaviour corresponds to.
 * A scenario's own value wins. Bare LF stays refused either way, as in the oracle (notqmail).
 */
export function smtpSessionEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return { QUAIL_BARECR: 'keep', QUAIL_LOOSE: '1', ...env };
}
