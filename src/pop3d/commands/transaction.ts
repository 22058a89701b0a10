// TRANSACTION state verbs and QUIT's UPDATE state (RFC 1939 sections 5 and 6, CAPA from RFC 2449).
import { parseNumber } from '../parse.js';
import type { Session } from '../session.js';
import type { MessageInfo } from '../types.js';
import type { Handler } from './authorization.js';
import { capa } from './capa.js';

/** The message `arg` names, or the -ERR text (no such message / already deleted). */
function pick(s: Session, arg: string | undefined): MessageInfo | string {
  const n = parseNumber(arg);
  if (n === null) return '-ERR a message number is needed';
  const m = s.mailbox?.list()[n - 1];
  if (!m) return `-ERR no such message, only ${s.mailbox?.list().length ?? 0} messages in maildrop`;
  if (s.marked.has(n)) return `-ERR message ${n} already deleted`;
  return m;
}

const live = (s: Session): MessageInfo[] => (s.mailbox?.list() ?? []).filter((m) => !s.marked.has(m.n));

const stat: Handler = async (s) => {
  const msgs = live(s);
  await s.reply(`+OK ${msgs.length} ${msgs.reduce((t, m) => t + m.size, 0)}`);
};

/** LIST and UIDL share their shape: one message, or all undeleted ones as a multi-line answer. */
function scanListing(render: (m: MessageInfo) => string): Handler {
  return async (s, cmd) => {
    if (cmd.args.length > 0) {
      const m = pick(s, cmd.args[0]);
      return void (await s.reply(typeof m === 'string' ? m : `+OK ${render(m)}`));
    }
    const msgs = live(s);
    const octets = msgs.reduce((t, m) => t + m.size, 0);
    await s.multiline(`+OK ${msgs.length} messages (${octets} octets)`, msgs.map(render));
  };
}

const list = scanListing((m) => `${m.n} ${m.size}`);
const uidl = scanListing((m) => `${m.n} ${m.uid}`);

async function send(s: Session, m: MessageInfo, bodyLines?: number): Promise<void> {
  const mailbox = s.mailbox;
  if (!mailbox) return;
  const first = bodyLines === undefined ? `+OK ${m.size} octets` : '+OK top of message follows';
  let sent: Promise<boolean>;
  try {
    // A small message (most mail) is read, converted and framed with no await in between: its bytes are a view of a
    // buffer the next read reuses (docs/PERFORMANCE.md, POP3).
    const stored = mailbox.readStored(m.n);
    sent =
      stored !== undefined
        ? s.sendStored(first, stored, bodyLines)
        : s.stream(first, await mailbox.retrieve(m.n, bodyLines));
  } catch (err) {
    s.config.log('pop3.error', { login: s.account?.login, ip: s.client.ip, error: `retrieve ${m.n}: ${String(err)}` });
    return void (await s.reply(`-ERR [SYS/TEMP] message ${m.n} cannot be read`));
  }
  if ((await sent) && bodyLines === undefined) s.retrieved++;
}

const retr: Handler = async (s, cmd) => {
  const m = pick(s, cmd.args[0]);
  if (typeof m === 'string') return void (await s.reply(m));
  await send(s, m);
};

const top: Handler = async (s, cmd) => {
  const m = pick(s, cmd.args[0]);
  if (typeof m === 'string') return void (await s.reply(m));
  const lines = parseNumber(cmd.args[1], 0);
  if (lines === null) return void (await s.reply('-ERR TOP needs a message number and a line count'));
  await send(s, m, lines);
};

const dele: Handler = async (s, cmd) => {
  const m = pick(s, cmd.args[0]);
  if (typeof m === 'string') return void (await s.reply(m));
  s.marked.add(m.n);
  await s.reply(`+OK message ${m.n} deleted`);
};

const rset: Handler = async (s) => {
  s.marked.clear();
  const msgs = live(s);
  await s.reply(`+OK maildrop has ${msgs.length} messages (${msgs.reduce((t, m) => t + m.size, 0)} octets)`);
};

const noop: Handler = async (s) => {
  await s.reply('+OK');
};

/** UPDATE (RFC 1939 section 6): the deletions are done before "+OK" is sent; a failure is "-ERR". */
const quit: Handler = async (s) => {
  s.end = 'quit';
  const marked = [...s.marked].sort((a, b) => a - b);
  try {
    if (!s.mailbox) throw new Error('no mailbox in TRANSACTION state');
    const r = await s.mailbox.commit(marked);
    s.mailbox.close(); // released before "+OK", so the client's next session finds the mailbox free
    s.deleted = r.deleted;
    if (r.quotaError) s.config.log('pop3.warning', { login: s.account?.login, ip: s.client.ip, error: r.quotaError });
    await s.reply(`+OK quail POP3 server signing off (${r.deleted} messages deleted)`);
  } catch (err) {
    s.mailbox?.close();
    s.config.log('pop3.error', { login: s.account?.login, ip: s.client.ip, error: `update: ${String(err)}` });
    await s.reply('-ERR [SYS/TEMP] some deleted messages not removed');
  }
};

const capaHandler: Handler = async (s) => {
  await s.multiline('+OK capability list follows', capa(s));
};

export const TRANSACTION: Readonly<Record<string, Handler>> = {
  CAPA: capaHandler,
  STAT: stat,
  LIST: list,
  UIDL: uidl,
  RETR: retr,
  TOP: top,
  DELE: dele,
  RSET: rset,
  NOOP: noop,
  QUIT: quit,
};
