// The catalogue of every event `quail start` logs: its name, its fields, what it means (src/start/README.md "Events").
import type { Pop3EventName } from '../pop3d/index.js';
import type { SchedulerEventName } from '../scheduler/index.js';
import type { SmtpEventName } from '../smtpd/index.js';

/**
 * The events start itself logs. Prefixes: `quail.*` the supervisor; `smtp.*` / `pop3.*` the services (listeners and
 * sessions); `smtpd.*` / `pop3d.*` / `sendd.*` the processes that run them as control/quailuser (started, crashed,
 * busy, error); `send.*` the scheduler (qmail-send's log lines); `dkim.*` outbound DKIM signing (the send process); `queue.*` the queue; `lspawn.*` root's local spawner.
 */
type StartEventName =
  | 'quail.started'
  | 'quail.signal'
  | 'quail.ignored'
  | 'quail.reloaded'
  | 'quail.flush'
  | 'quail.stopping'
  | 'quail.stopped'
  | 'quail.error'
  | 'quail.warning'
  | 'smtp.listening'
  | 'pop3.listening'
  | 'smtpd.started'
  | 'smtpd.crashed'
  | 'smtpd.busy'
  | 'smtpd.error'
  | 'smtpd.outage'
  | 'pop3d.started'
  | 'pop3d.crashed'
  | 'pop3d.busy'
  | 'pop3d.error'
  | 'metrics.listening'
  | 'metrics.error'
  | 'metricsd.started'
  | 'metricsd.crashed'
  | 'metricsd.busy'
  | 'metricsd.lost'
  | 'metricsd.error'
  | 'sendd.started'
  | 'sendd.crashed'
  | 'sendd.error'
  | 'dkim.signed'
  | 'dkim.error'
  | 'queue.recovered'
  | 'queue.warning'
  | 'held.push'
  | 'held.error'
  | 'held.autoturn'
  | 'odmr.listening'
  | 'odmr.error'
  | 'odmr.session'
  | 'odmr.atrn'
  | 'odmr.auth'
  | 'odmr.refused'
  | 'odmrd.started'
  | 'odmrd.crashed'
  | 'odmrd.busy'
  | 'odmrd.error'
  | 'lspawn.refused'
  // issue 19: the web admin
  | 'web.listening'
  | 'web.error'
  | 'web.login'
  | 'web.change'
  | 'webd.started'
  | 'webd.crashed'
  | 'webd.busy'
  | 'webd.lost'
  | 'webd.error'
  // mailing lists (src/lists)
  | 'lists.change'
  | 'lists.refused'
  | 'offices.loaded'
  | 'offices.error'
  | 'offices.moving'
  | 'offices.moved';

/** Every event name quail logs: a misspelt one does not compile. */
export type EventName = StartEventName | SmtpEventName | Pop3EventName | `send.${SchedulerEventName}`;

export interface EventDoc {
  /** The fields, in the order they are written (`?` = not always there). */
  readonly fields: string;
  readonly doc: string;
}

/** One entry per name (the type asks for every one, and no other). The README's table says the same. */
export const EVENTS: { readonly [N in EventName]: EventDoc } = {
  'quail.started': { fields: 'pid root mxport?', doc: 'the supervisor runs; every listener is bound' },
  'quail.signal': { fields: 'signal', doc: 'SIGTERM or SIGINT received: stopping' },
  'quail.ignored': {
    fields: 'signal',
    doc: 'SIGUSR1 or SIGUSR2 received and ignored (on SIGUSR1 Node.js would open its debugger to local users)',
  },
  'quail.reloaded': {
    fields: 'starttls? note',
    doc: 'SIGHUP handled (locals, virtualdomains, servercert.pem re-read)',
  },
  'quail.flush': { fields: '', doc: 'SIGALRM: every deferred recipient is retried now' },
  'quail.stopping': { fields: 'pid', doc: 'stop begun: listeners closed, sessions get their grace' },
  'quail.stopped': { fields: 'pid', doc: 'everything stopped, pid file removed' },
  'quail.error': { fields: 'step? error', doc: 'a stop step failed or was late, or the stop itself failed' },
  'quail.warning': {
    fields: 'file? step? why',
    doc: "at start and on SIGHUP: what qmail ignores in a control file without a word (a number file not starting with a digit: its default holds; a mapping line without ':' or a pattern given again: the later wins), or a number or mapping file that cannot be read (control/localworkers on SIGHUP: the number in use is kept); `step`: a SIGHUP reload step that failed (the others went on) or a write of run/ that failed",
  },
  'smtp.listening': { fields: 'address port kind user? starttls?', doc: 'an SMTP or submission listener is bound' },
  'smtp.connect': { fields: 'ip listener kind', doc: 'a connection accepted' },
  'smtp.refused': {
    fields: 'ip why listener? commands? transactions? from? bytes? reply? by?',
    doc: 'a connection or message refused (maxconn/maxperip, deny, no progress, no-message: maxunsent transactions without a message, bare LF, size, dmarc, header-too-large, rbl, pre-greet)',
  },
  'smtp.stress': {
    fields: 'listener on connections',
    doc: 'a listener entered (on=true, at 3/4 of maxconn) or left (below 1/2) stress mode: waits for clients capped at stresstimeout= seconds',
  },
  'smtp.rbl': {
    fields: 'ip listed why',
    doc: "a listener's DNS blocklists let a client in for a reason worth saying (RBLSMTPD empty, anti-listed, a lookup failed or passed its deadline)",
  },
  'smtp.tls': { fields: 'ip protocol', doc: 'STARTTLS done' },
  'smtp.auth': { fields: 'ip user? ok reason?', doc: 'an AUTH attempt and its result' },
  'smtp.reject': {
    fields: 'ip why auth? from to?',
    doc: 'MAIL or RCPT refused (badmailfrom, rcpthosts, no mailbox, sender not the login)',
  },
  'smtp.queued': {
    fields: 'id ip from rcpts bytes protocol auth? filter? rule?',
    doc: "a message committed to the queue (the parent then wakes the scheduler); with `filter` (QMAILQUEUE) the id is the program's pid and the program queued it; rule: why it joined a named queue (control/queuerules)",
  },
  'smtp.queue-failed': {
    fields: 'ip from error detail? filter?',
    doc: 'the queue, or the QMAILQUEUE program `filter`, refused a message (the client got 451/554 with `error`); `detail`: the cause behind it, such as what the program wrote on stderr (never sent to the client)',
  },
  'smtp.checked': {
    fields: 'ip from spf dkim dmarc arc removed? action',
    doc: 'an inbound message checked (SPF, DKIM, DMARC, ARC; authcheck=): the results, spoofed Authentication-Results removed, accept or reject',
  },
  'smtp.error': { fields: 'ip? error', doc: 'a session or listener error, or servercert.pem unusable (STARTTLS off)' },
  'smtp.close': {
    fields: 'ip reason messages',
    doc: 'a session ended (reason: quit, eof, timeout, not-reading: its replies went unread past timeoutsmtpd, ...)',
  },
  'smtpd.started': { fields: 'pid user uid listeners', doc: 'the SMTP process serves the listeners (as root only)' },
  'smtpd.crashed': {
    fields: 'pid code signal crashes stack? restart_in_ms',
    doc: 'the SMTP process died; a new one is started',
  },
  'smtpd.busy': { fields: 'listener ip', doc: 'no SMTP process took a connection in time: 421' },
  'smtpd.error': { fields: 'error restart_in_ms', doc: 'a new SMTP process could not be started; tried again later' },
  'smtpd.outage': {
    fields: 'after_ms listeners',
    doc: 'no SMTP process for after_ms: root accepts on the ports itself until quail restarts (connections wait for a process, or get 421)',
  },
  'pop3.listening': { fields: 'address port tls user?', doc: 'a POP3 listener is bound' },
  'pop3.refused': {
    fields: 'login? ip tls? via? reason',
    doc: 'a connection or login refused (limits, deny, credentials, mailbox in use)',
  },
  'pop3.error': {
    fields: 'login? ip? listener? error',
    doc: 'a session error, a listener not opened, or servercert.pem unusable',
  },
  'pop3.warning': {
    fields: 'login? logins? ip? listener? error',
    doc: 'a quota update failed, last-login times were not recorded (logins: how many), or the implicit-TLS port is not opened',
  },
  'pop3.login': { fields: 'login ip tls via messages octets open', doc: 'a login; its mailbox is open' },
  'pop3.session': { fields: 'login ip end retrieved deleted open', doc: 'a logged-in session ended' },
  'pop3.stress': {
    fields: 'on connections',
    doc: 'a POP3 listener entered (on=true, at 3/4 of its connection limit) or left (below 1/2) stress mode: waits for commands capped at stresstimeout= seconds',
  },
  'pop3d.started': { fields: 'pid user uid listeners', doc: 'the POP3 process serves the listeners (as root only)' },
  'pop3d.crashed': {
    fields: 'pid code signal crashes stack? restart_in_ms',
    doc: 'the POP3 process died; a new one is started',
  },
  'pop3d.busy': { fields: 'listener ip', doc: 'no POP3 process took a connection in time' },
  'pop3d.error': { fields: 'error restart_in_ms', doc: 'a new POP3 process could not be started; tried again later' },
  'metrics.listening': { fields: 'address port user?', doc: 'a metrics listener (Prometheus, GET /metrics) is bound' },
  'metrics.error': { fields: 'listener? error', doc: 'a metrics listener was not opened' },
  'metricsd.started': {
    fields: 'pid user uid listeners',
    doc: 'the metrics process serves the metrics listeners (as root only)',
  },
  'metricsd.crashed': {
    fields: 'pid code signal crashes stack? restart_in_ms',
    doc: 'the metrics process died; a new one is started',
  },
  'metricsd.busy': { fields: 'listener ip', doc: 'no metrics process took a connection in time: 503' },
  'metricsd.lost': {
    fields: 'listener ip',
    doc: 'the metrics process died before it answered a request it may have read: 503 from root, try again',
  },
  'metricsd.error': {
    fields: 'error restart_in_ms',
    doc: 'a new metrics process could not be started; tried again later',
  },
  'sendd.started': {
    fields: 'pid user uid restarts',
    doc: 'the send process (scheduler, remote delivery) runs (as root only)',
  },
  'sendd.crashed': {
    fields: 'pid code signal restarts restart_in_ms error?',
    doc: 'the send process died; a new one is started',
  },
  'sendd.error': {
    fields: 'pid? error stack? restart_in_ms?',
    doc: 'the send process reported an uncaught exception, or a new one could not be started',
  },
  'send.new': { fields: 'msg', doc: 'qmail-send: new msg' },
  'send.info': {
    fields: 'msg bytes from uid? queue? rule?',
    doc: 'qmail-send: info msg; queue and rule when it is in a named queue (control/queues)',
  },
  'send.start': { fields: 'delivery msg channel to', doc: 'qmail-send: starting delivery' },
  'send.delivery': {
    fields: 'delivery msg result report code?',
    doc: 'qmail-send: delivery N: success, deferral or failure, with the report and its (#x.y.z)',
  },
  'send.forward': { fields: 'msg via qp id', doc: 'a forward queued for a local delivery' },
  'send.bounce': {
    fields: 'msg qp? id? kind to? queue?',
    doc: 'qmail-send: bounce msg; kind none: its queue has bounces=none (nothing queued); queue: the bounce queue',
  },
  'send.triple_bounce': { fields: 'msg', doc: 'qmail-send: triple bounce, discarded' },
  'send.end': { fields: 'msg', doc: 'qmail-send: end msg (removed from the queue)' },
  'send.reload': { fields: '', doc: 'locals and virtualdomains re-read' },
  'send.warning': { fields: 'msg? reason', doc: 'a queue read, write or scan failed; tried again later' },
  'send.alert': { fields: 'reason', doc: 'the scheduler cannot start: unable to read controls' },
  'dkim.signed': {
    fields: 'msg domain selector',
    doc: 'an outgoing message signed with DKIM (once per message; src/msgauth)',
  },
  'dkim.error': {
    fields: 'msg error',
    doc: "a message that should be signed could not be (the domain's key unreadable): its delivery is deferred",
  },
  'queue.recovered': {
    fields: 'kept undone removed corrupt',
    doc: 'the queue was recovered at start (docs/QUEUE.md); corrupt: files moved to queue/corrupt/ by this recovery',
  },
  'queue.warning': {
    fields: 'corrupt dir why',
    doc: 'recovery moved damaged or unexplained files (corrupt: how many) to queue/corrupt/ (dir); `quail status` counts them',
  },
  'held.push': {
    fields: 'domain result sent? bounced? kept? why?',
    doc: "a held domain's Maildir pushed to its RELAYHOST (done, stopped: not reachable, or busy: locked)",
  },
  'held.error': { fields: 'domain? error', doc: 'a held push could not run (control files, the Maildir)' },
  'held.autoturn': {
    fields: 'domain ip',
    doc: "an SMTP session from a held domain's AutoTURN address ended: its held mail is pushed to its RELAYHOST",
  },
  'odmr.listening': { fields: 'address port user?', doc: 'an ODMR listener (RFC 2645, ATRN) is bound' },
  'odmr.error': {
    fields: 'listener? error',
    doc: 'an ODMR listener was not opened or failed to accept, or servercert.pem unusable (STARTTLS off)',
  },
  'odmr.session': {
    fields: 'ip login end',
    doc: 'an ODMR session ended (quit, reversed, idle, errors, auth-failures: the third failed AUTH, tls-failed, gone, not-reading: its replies went unread past the idle time)',
  },
  'odmr.atrn': {
    fields: 'login? ip domains? domain? result waiting? sent? bounced? kept? why?',
    doc: 'an ATRN: refused, no-mail, reversed, busy (locked), then per domain done or stopped with the counts',
  },
  'odmr.auth': {
    fields: 'ip login? mechanism result',
    doc: 'an ODMR AUTH and its result: ok, refused (wrong password or secret, no such login), not-atrn (right password, but the ATRN login of no held domain: refused the same way), unavailable (the directory did not answer), needs-tls (PLAIN or LOGIN before STARTTLS); failures are slowed down as SMTP AUTH',
  },
  'odmr.refused': {
    fields: 'ip why listener',
    doc: "an ODMR connection refused over the listener's maxconn or maxperip: 421",
  },
  'odmrd.started': {
    fields: 'pid user uid listeners',
    doc: 'the ODMR process serves the odmr listeners (as root only)',
  },
  'odmrd.crashed': {
    fields: 'pid code signal crashes stack? restart_in_ms',
    doc: 'the ODMR process died; a new one is started',
  },
  'odmrd.busy': { fields: 'listener ip', doc: 'no ODMR process took a connection in time: 421' },
  'odmrd.error': { fields: 'error restart_in_ms', doc: 'a new ODMR process could not be started; tried again later' },
  'lspawn.refused': { fields: 'reason', doc: 'root refused a local delivery request of the send process (a deferral)' },
  // issue 19: the web admin (src/web, src/access)
  'web.listening': { fields: 'address port tls proxy user?', doc: 'a web admin listener is bound' },
  'web.error': {
    fields: 'listener? path? error',
    doc: 'a web admin listener not opened, or a request the directory could not answer (the page said try again)',
  },
  'web.login': { fields: 'login ip result', doc: 'a web admin login: ok or refused (refusals are throttled)' },
  'web.change': { fields: 'op status ip', doc: 'a change asked for in the web admin, and its answer (200, 400, 403)' },
  'webd.started': {
    fields: 'pid user uid listeners',
    doc: 'the web admin process serves its listeners (as root only)',
  },
  'webd.crashed': {
    fields: 'pid code signal crashes stack? restart_in_ms',
    doc: 'the web admin process died; a new one is started',
  },
  'webd.busy': { fields: 'listener ip', doc: 'no web admin process took a connection in time: 503' },
  'webd.lost': {
    fields: 'listener ip',
    doc: 'the web admin process died before it answered a request it may have read: 503 from root, try again',
  },
  'webd.error': {
    fields: 'error restart_in_ms',
    doc: 'a new web admin process could not be started; tried again later',
  },
  // mailing lists (src/lists)
  'lists.change': {
    fields: 'list op address outcome',
    doc: 'a list program asked for a change over run/lists.sock and it was made (subscribed, unsubscribed, bounce counted, probe, removed)',
  },
  'lists.refused': {
    fields: 'list op address error',
    doc: 'a list change asked over run/lists.sock was refused (bad or old cookie, no such list) or failed',
  },
  'offices.loaded': {
    fields: 'office offices mailboxes repaired why',
    doc: 'the mailbox→office table read from the shared directory (run/offices.json); `repaired` qmail files brought in step (src/offices)',
  },
  'offices.error': {
    fields: 'office error',
    doc: 'the shared directory could not be read or listened to: the last table stays in use (src/offices)',
  },
  'offices.moving': {
    fields: 'office pushed written removed',
    doc: 'a pass of mailbox moves: Maildir files carried into the directory (old office), written into the Maildir (new office), removed at the old office once written (src/offices)',
  },
  'offices.moved': {
    fields: 'office address from to files note',
    doc: "a mailbox's move is finished: every file written at the new office, none left at the old (`note`: why it ended otherwise)",
  },
};

export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && Object.hasOwn(EVENTS, name);
}
