// maildir2mbox and maildirwatch: qmail's tools that read $MAILDIR (new/ and cur/, oldest first).
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { die, type ToolIo } from './io.js';

interface Entry {
  readonly path: string;
  readonly name: string;
  readonly mtime: Date;
}

/** qmail's maildir_clean: tmp/ files untouched for 36 hours are removed. */
async function cleanTmp(maildir: string, now: Date): Promise<void> {
  const tmp = join(maildir, 'tmp');
  for (const name of await readdir(tmp).catch(() => [] as string[])) {
    const st = await stat(join(tmp, name)).catch(() => null);
    if (st !== null && now.getTime() - st.atime.getTime() > 36 * 3600 * 1000)
      await unlink(join(tmp, name)).catch(() => undefined);
  }
}

/** qmail's maildir_scan: the messages of new/ (and cur/ when asked), oldest modification first; dot files skipped. */
async function scan(maildir: string, withCur: boolean): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const sub of withCur ? ['new', 'cur'] : ['new']) {
    const dir = join(maildir, sub);
    for (const name of await readdir(dir)) {
      if (name.startsWith('.')) continue;
      const st = await stat(join(dir, name)).catch(() => null);
      if (st !== null && st.isFile()) out.push({ path: join(dir, name), name: `${sub}/${name}`, mtime: st.mtime });
    }
  }
  return out.sort((a, b) => a.mtime.getTime() - b.mtime.getTime());
}

/** qmail's myctime, as in the From_ line qmail-local writes (`Thu Dec 04 13:19:53 2026`: UTC, the day zero-padded). */
function ctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    `${days[d.getUTCDay()] ?? ''} ${months[d.getUTCMonth()] ?? ''} ${two(d.getUTCDate())} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}\n`
  );
}

/** The From_ line maildir2mbox makes from the message's first line, when it is a Return-Path. */
function fromLine(first: string, mtime: Date): string {
  if (!first.startsWith('Return-Path: <') || !first.endsWith('\n')) return `From XXX ${ctime(mtime)}`;
  if (first[14] === '>') return `From MAILER-DAEMON ${ctime(mtime)}`;
  return `From ${first.slice(14, first.length - 2).replace(/[ \t]/g, '-')} ${ctime(mtime)}`;
}

/** `>*From ` at the start of a line gets one more `>` (qmail's gfrom). */
const quoteFrom = (line: string): string => (/^>*From /.test(line) ? `>${line}` : line);

/** Streams one message into the mbox: its From_ line, the lines `>From `-quoted, a newline after a partial last line. */
async function copyMessage(e: Entry, write: (s: string | Buffer) => Promise<unknown>): Promise<void> {
  let pending = '';
  let first = true;
  const put = async (line: string): Promise<void> => {
    if (first) {
      first = false;
      await write(fromLine(line, e.mtime));
    }
    await write(Buffer.from(quoteFrom(line), 'latin1'));
  };
  for await (const chunk of createReadStream(e.path)) {
    const lines = (pending + (chunk as Buffer).toString('latin1')).split(/(?<=\n)/);
    pending = lines.pop() ?? '';
    if (pending.endsWith('\n')) {
      lines.push(pending);
      pending = '';
    }
    for (const line of lines) await put(line);
  }
  if (first) await write(fromLine('', e.mtime));
  if (pending !== '') await put(`${pending}\n`);
}

/**
 * flock(2) on `fd` through util-linux flock(1) run on a duplicate of the descriptor (the lock belongs to the open
 * file description, so it stays ours after the helper exits; the same trick as src/local's mbox delivery).
 */
function lockExclusive(fd: number): Promise<boolean> {
  const bin = ['/usr/bin/flock', '/bin/flock'].find((p) => existsSync(p));
  if (bin === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    const child = spawn(bin, ['-x', '3'], { stdio: ['ignore', 'ignore', 'ignore', fd], env: {} });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

const FATAL2 = 'maildir2mbox: fatal: ';

/**
 * maildir2mbox(1): moves every message of $MAILDIR (new/ and cur/) to the end of the mbox $MAIL. Under an
 * exclusive flock of $MAIL it copies $MAIL to $MAILTMP, appends the messages (From_ line from Return-Path,
 * `>From ` quoting, a blank line after each), fsyncs, renames $MAILTMP over $MAIL, and only then removes the
 * messages from the Maildir. Exit 0, or 111 with the reason; nothing new: exit 0 without touching $MAIL.
 */
export async function maildir2mbox(io: ToolIo): Promise<number> {
  const mbox = io.env['MAIL'];
  const mboxtmp = io.env['MAILTMP'];
  const maildir = io.env['MAILDIR'];
  if (mbox === undefined) return die(io, 111, `${FATAL2}MAIL not set`);
  if (mboxtmp === undefined) return die(io, 111, `${FATAL2}MAILTMP not set`);
  if (maildir === undefined) return die(io, 111, `${FATAL2}MAILDIR not set`);
  let entries: Entry[];
  try {
    await cleanTmp(maildir, io.now?.() ?? new Date());
    entries = await scan(maildir, true);
  } catch (err) {
    return die(io, 111, `${FATAL2}unable to scan $MAILDIR: ${(err as Error).message}`);
  }
  if (entries.length === 0) return 0;
  const step = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw new Error(`${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  let lock;
  try {
    lock = await step(`unable to lock ${mbox}`, () => open(mbox, 'a', 0o600));
  } catch (err) {
    return die(io, 111, FATAL2 + (err as Error).message);
  }
  try {
    if (!(await lockExclusive(lock.fd))) return die(io, 111, `${FATAL2}unable to lock ${mbox}: flock failed`);
    const old = await step(`unable to read ${mbox}`, () => open(mbox, 'r'));
    const out = await step(`unable to create ${mboxtmp}`, () => open(mboxtmp, 'w', 0o600));
    try {
      const write = (s: string | Buffer): Promise<unknown> =>
        step(`unable to write to ${mboxtmp}`, () => out.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s));
      for await (const chunk of old.createReadStream({ autoClose: false })) await write(chunk as Buffer);
      for (const e of entries) {
        await step(`unable to read $MAILDIR/${e.name}`, () => copyMessage(e, write));
        await write('\n');
      }
      await step(`unable to write to ${mboxtmp}`, () => out.sync());
    } finally {
      await out.close();
      await old.close();
    }
    await step(`unable to move ${mboxtmp} to ${mbox}`, () => rename(mboxtmp, mbox));
  } catch (err) {
    return die(io, 111, FATAL2 + (err as Error).message);
  } finally {
    await lock.close();
  }
  for (const e of entries)
    await unlink(e.path).catch((err: NodeJS.ErrnoException) =>
      io.stderr(
        `maildir2mbox: warning: $MAILDIR/${e.name} will be delivered twice; unable to unlink: ${err.code ?? ''}\n`,
      ),
    );
  return 0;
}

/** What maildirwatch shows of one message: `FROM sender TO <recipient>`, the From line in bold, the Subject and body start. */
async function summary(path: string): Promise<string | null> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(65536);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
  const end = text.indexOf('\n\n');
  const header = end < 0 ? text : text.slice(0, end + 1);
  const body = end < 0 ? '' : text.slice(end + 2);
  let sender = '?';
  let recipient = '?';
  let fromline = '';
  let subject = '';
  for (const field of header.split(/\n(?![ \t])/)) {
    const colon = field.indexOf(':');
    if (colon <= 0) continue;
    const name = field.slice(0, colon).toLowerCase();
    const value = field.slice(colon + 1).replace(/^[ \t]+/, '');
    if (name === 'subject') subject += value + '\n';
    else if (name === 'delivered-to') recipient = value;
    else if (name === 'return-path') sender = value;
    else if (name === 'from') fromline = field;
  }
  const clean = (s: string, bad: string): string => s.replace(/[^\x20-\x7e]/g, bad);
  // qmail keeps 158 characters of Subject + body, and shows every unprintable byte as `/`.
  const gist = clean((subject + body).slice(0, 158), '/');
  const from = fromline === '' ? '' : `\x1b[1m${clean(fromline, '/')}\x1b[0m\n`;
  return `FROM ${clean(sender, '?')} TO <${clean(recipient, '?')}>\n${from}${gist}\n\n`;
}

/**
 * maildirwatch(1): shows the messages of $MAILDIR/new (sender, recipient, From, the start of Subject and body).
 * On a terminal it clears the screen and repeats every 30 seconds, as qmail's does; otherwise (a pipe, a file,
 * a script) it prints the listing once, without the clear-screen codes, and exits 0. 111 when $MAILDIR is unusable.
 */
export async function maildirwatch(
  io: ToolIo,
  o: { loop: boolean; sleep?: (ms: number) => Promise<void> },
): Promise<number> {
  const maildir = io.env['MAILDIR'];
  if (maildir === undefined) return die(io, 111, 'maildirwatch: fatal: MAILDIR not set');
  for (;;) {
    let entries: Entry[];
    try {
      await cleanTmp(maildir, io.now?.() ?? new Date());
      entries = await scan(maildir, false);
    } catch (err) {
      return die(io, 111, `maildirwatch: fatal: unable to scan $MAILDIR: ${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
    let screen = o.loop ? '\x1b[;H\x1b[;J' : '';
    for (const e of entries) screen += (await summary(e.path)) ?? '';
    io.stdout.write(screen);
    if (!o.loop) return 0;
    await (o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms))))(30_000);
  }
}
