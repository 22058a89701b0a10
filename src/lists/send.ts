// Getting list mail into the queue: replies through quail's inject (src/inject), posts as they are (one per subscriber).
import { Readable } from 'node:stream';
import { Control } from '../control/index.js';
import { injectMessage } from '../inject/index.js';
import { openQueue } from '../queue/index.js';

export interface Reply {
  /** Envelope sender: the list's bounce address (`team-return-@example.com`), never a person. */
  readonly sender: string;
  readonly to: string;
  readonly from: string;
  readonly subject: string;
  readonly text: string;
  /** More header lines (`Reply-To: ...`), each without its newline. */
  readonly extra?: readonly string[];
}

/** What the list programs queue with; the tests and the programs both use the real queue. */
export interface Outbox {
  reply(r: Reply): Promise<void>;
  /** One message to one recipient with its own envelope sender (VERP); `data` is the whole message. */
  copy(sender: string, recipient: string, data: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** The queue of `root`, as the calling uid (root or the queue's account, as every injector). */
export async function queueOutbox(root: string): Promise<Outbox> {
  const q = await openQueue(root, { create: false });
  const control = new Control(root);
  const uid = process.getuid?.() ?? 0;
  return {
    async reply(r) {
      const head = [
        `From: ${r.from}`,
        `To: ${r.to}`,
        `Subject: ${r.subject}`,
        'Auto-Submitted: auto-replied',
        'Precedence: bulk',
        ...(r.extra ?? []),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
      ].join('\n');
      await injectMessage(
        q,
        Readable.from([Buffer.from(`${head}\n\n${r.text}`, 'utf8')]),
        { source: 'args', sender: r.sender, recipients: [r.to] },
        { control, env: { QMAILUSER: 'mailer-daemon' }, uid },
      );
    },
    async copy(sender, recipient, data) {
      await q.inject({
        sender,
        recipients: [recipient],
        data,
        injector: { kind: 'uid', uid },
        meta: { origin: 'inject' },
      });
    },
    close: () => Promise.resolve(q.close()),
  };
}
