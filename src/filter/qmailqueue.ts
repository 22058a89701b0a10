// QMAILQUEUE: hand a message to a qmail-queue-compatible program (qmail-queue(8): message on fd 0, envelope on fd 1).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { QuailError, type EnhancedCode } from '../core/index.js';

/** What the program gets: the envelope and the message bytes (LF line ends, as qmail-queue reads them). */
export interface FilterMessage {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly data: Readable | Buffer;
}

export interface QmailQueueOptions {
  /** The program's whole environment (qmail-smtpd passes its own: TCPREMOTEIP, RELAYCLIENT, ...). */
  readonly env: Readonly<Record<string, string>>;
  /** After this the program's process group is killed and the message refused temporarily (qq timeout). */
  readonly timeoutMs: number;
}

/** The envelope qmail-queue reads on fd 1: `F` sender NUL, `T` recipient NUL each, then a NUL. */
export function encodeEnvelope(sender: string, recipients: readonly string[]): Buffer {
  return Buffer.from(`F${sender}\0${recipients.map((r) => `T${r}\0`).join('')}\0`, 'latin1');
}

/**
 * qmail's qmail.c (qmail_close) table: what qmail-smtpd says for each qmail-queue exit code. 11–40 are permanent
 * (`D`), everything else temporary (`Z`). Exit 0 is acceptance and is not in the table.
 */
export function qmailQueueExit(code: number): { readonly permanent: boolean; readonly text: string } {
  const d = (text: string): { permanent: boolean; text: string } => ({ permanent: true, text });
  const z = (text: string): { permanent: boolean; text: string } => ({ permanent: false, text });
  switch (code) {
    case 11:
    case 115: // qmail.c: "compatibility"
      return d('envelope address too long for qq (#5.1.3)');
    case 31:
      return d('mail server permanently rejected message (#5.3.0)');
    case 51:
      return z('qq out of memory (#4.3.0)');
    case 52:
      return z('qq timeout (#4.3.0)');
    case 53:
      return z('qq write error or disk full (#4.3.0)');
    case 54:
      return z('qq read error (#4.3.0)');
    case 55:
      return z('qq unable to read configuration (#4.3.0)');
    case 56:
      return z('qq trouble making network connection (#4.3.0)');
    case 61:
      return z('qq trouble in home directory (#4.3.0)');
    case 62:
    case 63:
    case 64:
    case 65:
    case 66:
      return z('qq trouble creating files in queue (#4.3.0)');
    case 71:
      return z('mail server temporarily rejected message (#4.3.0)');
    case 72:
      return z('connection to mail server timed out (#4.4.1)');
    case 73:
      return z('connection to mail server rejected (#4.4.1)');
    case 74:
      return z('communication with mail server failed (#4.4.2)');
    case 81:
    case 91:
      return z('qq internal bug (#4.3.0)');
    case 120:
      return z('unable to exec qq (#4.3.0)');
    default:
      return code >= 11 && code <= 40 ? d('qq permanent problem (#5.3.0)') : z('qq temporary problem (#4.3.0)');
  }
}

/** The error for an exit code, or for the program's own `D`/`Z` text (fd 4, the custom-error patches' way). */
function refusal(code: number, custom: string): QuailError {
  const own = /^([DZ])([^\0\r\n]{1,400})/.exec(custom);
  if (own?.[1] !== undefined && own[2] !== undefined) {
    const permanent = own[1] === 'D';
    const text = own[2].trim();
    const enh: EnhancedCode =
      (/\(#([45]\.\d{1,3}\.\d{1,3})\)$/.exec(text)?.[1] as EnhancedCode | undefined) ?? (permanent ? '5.3.0' : '4.3.0');
    return new QuailError(text, !permanent, enh);
  }
  return qmailQueueRefusal(code);
}

/** What qmail-smtpd says for a qmail-queue exit code, as an error: qmail.c's text, its enhanced code, D or Z. */
export function qmailQueueRefusal(code: number): QuailError {
  const t = qmailQueueExit(code);
  const enh = /\(#([45]\.\d{1,3}\.\d{1,3})\)$/.exec(t.text)?.[1] as EnhancedCode;
  return new QuailError(t.text, !t.permanent, enh);
}

export interface QmailQueueResult {
  /** The program's pid: qmail-smtpd's `qp <pid of qmail-queue>`. */
  readonly pid: number;
  /** What it wrote on stderr (at most 1 KB), for the log. */
  readonly stderr: string;
}

/**
 * Runs PROGRAM (no arguments, no shell) the qmail-queue way and resolves once it exited 0 — which means it
 * queued the message (qmail trusts it: a program that exits 0 without queueing loses the message, as with
 * qmail). Rejects with a QuailError: permanent for exit codes 11–40, temporary for the others, for a signal,
 * an exec failure or the timeout (the whole process group is killed).
 */
export async function runQmailQueue(
  program: string,
  m: FilterMessage,
  opts: QmailQueueOptions,
): Promise<QmailQueueResult> {
  // fd 1 must be readable by the program: a private file, opened read-only and unlinked before the spawn.
  const dir = mkdtempSync(join(tmpdir(), 'quail-qq-'));
  let envFd: number;
  try {
    const path = join(dir, 'envelope');
    writeFileSync(path, encodeEnvelope(m.sender, m.recipients), { mode: 0o600 });
    envFd = openSync(path, 'r');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const child = (() => {
    try {
      return spawn(program, [], {
        stdio: ['pipe', envFd, 'pipe', 'ignore', 'pipe'],
        env: { ...opts.env },
        detached: true, // its own process group: a timeout kills the wrapper and whatever it started
      });
    } finally {
      closeSync(envFd);
    }
  })();
  let stderr = '';
  let custom = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 1024) stderr += c.toString('latin1').slice(0, 1024 - stderr.length);
  });
  child.stdio[4]?.on('data', (c: Buffer) => {
    if (custom.length < 1024) custom += c.toString('latin1');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; err?: Error }>((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, err }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, opts.timeoutMs);
  // The program may exit without reading everything (a refusal): EPIPE is then expected, its exit code decides.
  const stdin = child.stdin;
  const fed = stdin ? pipeline(m.data, stdin).catch(() => undefined) : Promise.resolve();
  const r = await exited;
  clearTimeout(timer);
  if (Buffer.isBuffer(m.data)) await fed;
  else if (!m.data.readableEnded) m.data.destroy();
  await fed;
  if (timedOut) throw withStderr(new QuailError('qq timeout (#4.3.0)', true, '4.3.0'), stderr);
  if (r.err !== undefined) throw new QuailError(`unable to exec qq (#4.3.0)`, true, '4.3.0', { cause: r.err });
  if (r.code === 0 && child.pid !== undefined) return { pid: child.pid, stderr };
  if (r.code === null) throw withStderr(new QuailError('qq crashed (#4.3.0)', true, '4.3.0'), stderr);
  throw withStderr(refusal(r.code, custom), stderr);
}

/**
 * A refusal with what the program wrote on stderr as its cause: the client gets only the refusal's text, the log
 * (smtpd's `smtp.queue-failed` detail) the program's own words, such as `quail filter`'s scanner address and answer.
 */
function withStderr(e: QuailError, stderr: string): QuailError {
  const said = stderr.trim();
  if (said === '') return e;
  return new QuailError(e.message, e.temporary, e.code, { cause: new Error(said) });
}
