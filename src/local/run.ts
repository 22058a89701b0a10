// qmail-local itself (docs/QMAIL.md D.1-D.8): checks, .qmail choice, then each line, dry-run (-n) or for real.
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { errText } from '../core/index.js';
import type { UniqueNamer } from '../maildir/index.js';
import { deliverToMaildir } from '../maildir/index.js';
import { findDotQmail, newSender, PATRN } from './dotqmail.js';
import { errorStr } from './errstr.js';
import { headerLines, programEnv } from './env.js';
import type { HeaderLines, LocalArgs } from './env.js';
import { parseInstructions } from './instructions.js';
import { DeliveryFailure, deliverToMbox } from './mbox.js';
import { programVerdict, runProgram } from './program.js';
import type { OutputChunk } from './program.js';
import type { ForwardRequest } from './types.js';
import { mergeForwards, type ProgramHook, type ProgramHookResult } from './hook.js';

export const USAGE = 'qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty';

/** What qmail-local did: its exit code and everything it (and its programs) wrote, in order. */
export interface LocalRun {
  readonly exitCode: number;
  readonly output: readonly OutputChunk[];
  /** Set when the run succeeded and had forward lines: the scheduler queues this (D.7.4). */
  readonly forward?: ForwardRequest;
}

export interface RunOptions {
  /** false = `-n`: print the instructions instead of executing them. */
  readonly doit: boolean;
  /** The message (read from offset 0 for every delivery; only needed when doit). */
  readonly messagePath?: string;
  /** PATH for programs. */
  readonly path: string;
  readonly namer: UniqueNamer;
  /** Who the forwarded copy is injected by (qmail-queue's Received line). */
  readonly injector: ForwardRequest['injector'];
  readonly now?: Date;
  /** Runs some program lines in-process (`| quail vdeliver`, hook.ts); null from it: run the program. */
  readonly programHook?: ProgramHook;
  /**
   * Programs' stdout and stderr kept apart, as when qmail-local runs by hand with its own two descriptors (`quail
   * local`); otherwise they share one pipe, as under qmail-lspawn, and the report has them in the order written.
   */
  readonly separateStderr?: boolean;
}

let headerBuf: Buffer | undefined;

/** What the look at the header found: the loop, and the whole message when its first read took all of it. */
interface HeaderLook {
  readonly looping: boolean;
  /**
   * The message's bytes, when the first read returned less than it asked for (a regular file's short read is its
   * end, and a queued message never changes): the Maildir deliveries write these instead of opening and reading the
   * file again (four system calls fewer per delivery, docs/PERFORMANCE.md ninth pass). A copy: the read buffer is
   * the process's own and the deliveries come after awaits.
   */
  readonly whole?: Buffer;
}

/**
 * Reads the header (up to the first empty line) and says whether a line equals DTLINE exactly (D.5).
 * Synchronous: a page-cache read of the header costs less than a trip through libuv's thread pool
 * (docs/PERFORMANCE.md).
 */
function lookAtHeader(messagePath: string, dtline: string): HeaderLook {
  const want = Buffer.from(dtline, 'latin1');
  const fd = openSync(messagePath, 'r');
  try {
    // one buffer per process: the reads are synchronous, so two deliveries never share it at once
    const buf = (headerBuf ??= Buffer.allocUnsafe(65536));
    let carry = Buffer.alloc(0);
    let pos = 0;
    let whole: Buffer | undefined;
    const found = (looping: boolean): HeaderLook => (whole ? { looping, whole } : { looping });
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (pos === 0 && n < buf.length) whole = Buffer.from(buf.subarray(0, n));
      if (n === 0) return found(false); // a last line without newline ends the header
      pos += n;
      let data = Buffer.concat([carry, buf.subarray(0, n)]);
      let nl: number;
      while ((nl = data.indexOf(0x0a)) >= 0) {
        const line = data.subarray(0, nl + 1);
        if (line.length <= 1) return found(false);
        if (line.equals(want)) return found(true);
        data = data.subarray(nl + 1);
      }
      carry = Buffer.from(data);
    }
  } finally {
    closeSync(fd);
  }
}

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Runs qmail-local with `a` as its eight arguments. Never throws: failures are exit codes with text on fd 2. */
export async function runQmailLocal(a: LocalArgs, o: RunOptions): Promise<LocalRun> {
  const output: OutputChunk[] = [];
  const say = (fd: 1 | 2, text: string): void => {
    output.push({ fd, data: Buffer.from(text, 'latin1') });
  };
  const die = (code: number, text: string): never => {
    say(2, `${text}\n`);
    throw new Exit(code);
  };
  try {
    const forward = await body(a, o, say, die, output);
    return { exitCode: 0, output, ...(forward ? { forward } : {}) };
  } catch (err) {
    if (err instanceof Exit) return { exitCode: err.code, output };
    if (err instanceof DeliveryFailure) {
      say(2, `${err.message}\n`);
      return { exitCode: err.exitCode, output };
    }
    say(2, `Unexpected error: ${errText(err)}. (#4.3.0)\n`);
    return { exitCode: 111, output };
  }
}

function checkHome(
  a: LocalArgs,
  o: RunOptions,
  say: (fd: 1 | 2, t: string) => void,
  die: (c: number, t: string) => never,
): void {
  if (!a.home.startsWith('/')) die(100, USAGE);
  let mode = 0;
  try {
    const st = statSync(a.home);
    if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(a.home, constants.X_OK);
    mode = st.mode;
  } catch (err) {
    die(111, `Unable to switch to ${a.home}: ${errorStr(err)}. (#4.3.0)`);
  }
  if (mode & PATRN) die(111, 'Uh-oh: home directory is writable. (#4.7.0)');
  if (mode & 0o1000) {
    if (o.doit) die(111, 'Home directory is sticky: user is editing his .qmail file. (#4.2.1)');
    else say(2, 'Warning: home directory is sticky.\n');
  }
}

async function body(
  a: LocalArgs,
  o: RunOptions,
  say: (fd: 1 | 2, t: string) => void,
  die: (c: number, t: string) => never,
  output: OutputChunk[],
): Promise<ForwardRequest | undefined> {
  checkHome(a, o, say, die);
  const h: HeaderLines = headerLines(a, o.now ?? new Date());
  const messagePath = o.messagePath ?? '/dev/null';
  let whole: Buffer | undefined;
  if (o.doit) {
    let look: HeaderLook = { looping: false };
    try {
      look = lookAtHeader(messagePath, h.dtline);
    } catch {
      die(111, 'Unable to read message. (#4.3.0)');
    }
    if (look.looping) die(100, 'This message is looping: it already has my Delivered-To line. (#5.4.6)');
    whole = look.whole;
  }
  const choice = findDotQmail(a.home, a.dash, a.ext);
  if (choice.failure !== undefined) die(111, choice.failure);
  if (choice.file === null && a.dash !== '') die(100, 'Sorry, no mailbox here by that name. (#5.1.1)');
  const ns = newSender(a.home, a);
  if ('failure' in ns) return die(111, ns.failure);

  let text = choice.text ?? '';
  let forwardOnly = choice.forwardOnly;
  if (text === '') {
    text = a.defaultDelivery;
    forwardOnly = false;
  }
  const env = programEnv(a, h, {
    newSender: ns.sender,
    path: o.path,
    ...(choice.defaultPart !== undefined ? { defaultPart: choice.defaultPart } : {}),
  });
  const counts = { file: 0, forward: 0, program: 0 };
  const targets: string[] = [];
  const hooked: Array<NonNullable<ProgramHookResult['forward']>> = [];
  const pathOf = (p: string): string => (p.startsWith('/') ? p : `${a.home}/${p}`);

  for (const ins of parseInstructions(text)) {
    let stop = false;
    switch (ins.kind) {
      case 'blank-first-line':
        die(111, 'Uh-oh: first line of .qmail file is blank. (#4.2.1)');
        break;
      case 'blank':
      case 'comment':
      case 'plus-other':
        break;
      case 'plus-list':
        forwardOnly = true;
        break;
      case 'maildir':
      case 'mbox':
        counts.file++;
        if (forwardOnly) die(111, 'Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)');
        if (!o.doit) say(1, `${ins.kind} ${ins.path}\n`);
        else if (ins.kind === 'maildir') await maildir(pathOf(ins.path), h, whole ?? messagePath, o.namer, die);
        else await deliverToMbox(pathOf(ins.path), ins.path, h, messagePath);
        break;
      case 'program': {
        counts.program++;
        if (forwardOnly) die(111, 'Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)');
        if (!o.doit) {
          say(1, `program ${ins.command}\n`);
          break;
        }
        const h2 = o.programHook
          ? await o.programHook({
              command: ins.command,
              env,
              home: a.home,
              messagePath,
              namer: o.namer,
              ...(whole ? { message: whole } : {}),
            })
          : null;
        if (h2?.forward) hooked.push(h2.forward);
        output.push(...(h2?.output ?? []));
        const r = h2
          ? h2.exit
          : await runProgram(ins.command, {
              home: a.home,
              env,
              messagePath,
              onOutput: (c) => output.push(c),
              merged: o.separateStderr !== true,
            });
        if (r.kind === 'spawn-error') die(111, r.text);
        if (r.kind === 'signal') die(111, 'Aack, child crashed. (#4.3.0)');
        if (r.kind === 'exit') {
          const v = programVerdict(r.code);
          if (v === 'permanent') throw new Exit(100);
          if (v === 'temporary') throw new Exit(111);
          if (v === 'stop') stop = true;
        }
        break;
      }
      case 'forward':
        counts.forward++;
        if (o.doit) targets.push(ins.target);
        else say(1, `forward ${ins.target}\n`);
        break;
    }
    if (stop) break;
  }
  say(1, `did ${counts.file}+${counts.forward}+${counts.program}\n`);
  if (!o.doit) return undefined;
  const fwd = mergeForwards(
    targets.length > 0 ? { sender: ns.sender, recipients: targets, prepend: h.dtline } : undefined,
    hooked,
  );
  if (typeof fwd === 'string') return die(111, fwd);
  return fwd && { ...fwd, injector: o.injector };
}

async function maildir(
  dir: string,
  h: HeaderLines,
  message: string | Buffer,
  namer: UniqueNamer,
  die: (c: number, t: string) => never,
): Promise<void> {
  const r = await deliverToMaildir(dir, Buffer.from(h.rpline + h.dtline, 'latin1'), message, namer);
  if (r.kind === 'ok') return;
  if (r.kind === 'nochdir') die(111, 'Unable to chdir to maildir. (#4.2.1)');
  if (r.kind === 'read-error') die(111, 'Unable to read message. (#4.3.0)');
  die(111, 'Temporary error on maildir delivery. (#4.3.0)');
}
