// The unprivileged SMTP process: serves the connections its root parent accepts and injects into the queue.
import { errText } from '../core/index.js';
import { Control, ControlFileCache } from '../control/index.js';
import { qmailQueueFilter } from '../filter/index.js';
import { openQueue, type FileQueue } from '../queue/index.js';
import { HeldAutoTurn, HeldEtrn } from './held-link.js';
import { loadTlsContext, SmtpListener, type ListenerSpec, type SmtpEventName } from '../smtpd/index.js';
import { rootThrottle, runServiceChild } from './child-common.js';
import { InboundLink } from './msgauth-link.js';
import { rblResolverFor } from './dns-link.js';
import { DirectoryLink } from './directory-link.js';
import { lookupBatcher } from './lookup-batch.js';
import type { FromSmtpChild } from './smtp.js';
import { LogBatch } from './log-batch.js';

const sendNow = (m: FromSmtpChild): void => {
  if (process.connected) process.send?.(m);
};
// log events wait for the end of the event-loop turn (log-batch.ts); any other message sends them first, in order
const logs = new LogBatch(sendNow);
const send = (m: FromSmtpChild): void => {
  logs.flush();
  sendNow(m);
};
// smtp.queued goes at the end of this event-loop turn (flushSoon): root passes it to the send child as the wake-up of
// its scheduler (the queue opened below does not also say it on the wake-up sockets: one wake-up per message, over
// the channel root already reads)
const log = (event: SmtpEventName, fields: Readonly<Record<string, unknown>>): void => {
  logs.add(event, fields);
  if (event === 'smtp.queued') logs.flushSoon();
};

function tlsOrNone(root: string): ReturnType<typeof loadTlsContext> {
  try {
    return loadTlsContext(new Control(root));
  } catch (err) {
    log('smtp.error', { error: `control/servercert.pem unusable, STARTTLS off: ${errText(err)}` });
    return undefined;
  }
}

/** Runs in the child: everything the process does is driven by the parent's messages (privchild.ts). */
export async function serveChild(root: string, uid: number, gid: number): Promise<void> {
  let queue: FileQueue | undefined;
  let tls: ReturnType<typeof loadTlsContext>;
  // AUTH and RCPT checks read the directory as this (unprivileged) account: its SQLite file is root:quailgroup 0640.
  // Each session still sees control/ as it is when it starts (qmail-smtpd reads its files per session), but a file
  // unchanged since the last session is one stat, not an open, read and close (docs/PERFORMANCE.md).
  const controlFiles = new ControlFileCache(root);
  const directory = new DirectoryLink(root, lookupBatcher(send), controlFiles);
  // one failed-login table for every SMTP listener and process, and POP3, ODMR and the web admin: root's (a client
  // gets no more guesses on a second port, the next process or another service)
  const authThrottle = rootThrottle(send);
  let etrn: HeldEtrn | undefined;
  let autoturn: HeldAutoTurn | undefined;
  /** What a sibling SMTP process told (through root): accepted ETRNs and AutoTURN pushes. */
  const heard = (body: unknown): void => {
    if (typeof body !== 'object' || body === null) return;
    const b = body as {
      readonly etrn?: unknown;
      readonly autoturn?: unknown;
      readonly t?: unknown;
    };
    if (typeof b.etrn === 'string' && typeof b.t === 'number') etrn?.heard(b.etrn, b.t);
    else if (typeof b.autoturn === 'string' && typeof b.t === 'number') autoturn?.heard(b.autoturn, b.t);
  };
  // inbound SPF/DKIM/DMARC/ARC (authcheck= on the listener line); DNS as control/dnsservers says
  const checker = new InboundLink(root);
  await runServiceChild<ListenerSpec>(
    {
      uid,
      gid,
      open: async () => {
        try {
          queue = await openQueue(root, { wake: false, journal: true }); // group commit: docs/QUEUE.md
        } catch (err) {
          throw new Error(
            `cannot open the queue of ${root} as uid ${process.getuid?.() ?? '?'}: ${errText(err)}; that account must be able to reach the mail root (mode 755 on it and the directories above) and own queue/ (quail init does that)`,
          );
        }
        tls = tlsOrNone(root);
      },
      listeners: (specs, accepts, admit) => {
        // one for every listener: its per-domain rate limit holds whichever port the customer used (and, told to the
        // other SMTP processes, whichever process served it)
        const flush = (domain: string): void => (queue as FileQueue).trigger('flush', domain);
        const turn = new HeldAutoTurn(
          root,
          flush,
          (event, fields) => logs.add(event, fields),
          undefined,
          (domain, t) => send({ type: 'share', body: { autoturn: domain, t } }),
        );
        const held = new HeldEtrn(root, flush, undefined, (domain, t) =>
          send({ type: 'share', body: { etrn: domain, t } }),
        );
        autoturn = turn;
        etrn = held;
        return specs.map(
          (spec, index) =>
            new SmtpListener(spec, {
              controlFor: () => controlFiles.snapshot(),
              queue: queue as FileQueue,
              filter: qmailQueueFilter({ root, path: process.env['PATH'] }),
              authenticator: directory,
              authThrottle,
              recipients: directory,
              senders: directory,
              checker,
              dns: rblResolverFor(root),
              etrn: held,
              autoturn: turn,
              tls: () => tls,
              log,
              // the only SMTP process accepts itself and counts its connections; with several, root counts the
              // connections of all of them (maxconn=, maxperip=, stress mode): each process accepts and asks root
              // (admit), or, where the processes cannot share the sockets, root accepts and hands each over
              admittedElsewhere: !accepts,
              ...(admit ? { admit: (ip: string) => admit(index, ip) } : {}),
            }),
        );
      },
      reload: () => {
        tls = tlsOrNone(root);
      },
      closed: (id) => logs.closed(id),
      onShare: heard,
      close: async () => {
        queue?.close();
        await queue?.closed(); // the journal's segments retired (a stop cut short leaves them to recovery)
        await directory.close();
        logs.flush();
      },
    },
    send,
  );
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined)
  void serveChild(root, Number(uid), Number(gid));
