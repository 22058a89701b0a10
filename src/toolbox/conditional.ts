// condredirect, bouncesaying, except, forward: qmail's tools that run a program or queue a copy (dot-qmail(5) helpers).
import { runChild, type ChildExit } from './child.js';
import { die, type ToolIo } from './io.js';
import { queueMessage } from './queue.js';
import { readFromStart, readOn, rewindError } from './stdin.js';

/** fork + execvp(argv) with the message on the same standard input, as the tools do. */
function runOnStdin(io: ToolIo, argv: readonly string[]): Promise<ChildExit> {
  return runChild(argv, { env: io.env, stdin: io.stdinFd, stdout: 'inherit' });
}

/** A child that could not be run exits 111 or 100 in qmail's tools (its forked child's `_exit`), crashed is 111. */
function childCode(e: ChildExit): number | 'crashed' {
  if (e.kind === 'crashed') return 'crashed';
  if (e.kind === 'unable') return e.temporary ? 111 : 100;
  return e.code;
}

/**
 * condredirect(1): runs the program; exit 0 → the message (DTLINE in front, envelope sender $SENDER) is queued to
 * NEWADDRESS and condredirect exits 99 (qmail-local skips the rest of the .qmail file); 111 or a crash → 111;
 * any other exit → 0 (nothing done). Needs a rewindable standard input (the message file qmail-local gives).
 */
export async function condredirect(io: ToolIo): Promise<number> {
  const [target, ...program] = io.argv;
  if (target === undefined || program.length === 0)
    return die(io, 100, 'condredirect: usage: condredirect newaddress program [ arg ... ]');
  const code = childCode(await runOnStdin(io, program));
  if (code === 'crashed') return die(io, 111, 'condredirect: fatal: child crashed');
  if (code === 111) return die(io, 111, 'condredirect: fatal: temporary child error');
  if (code !== 0) return 0;
  const cannot = rewindError(io.stdinFd);
  if (cannot !== null) return die(io, 111, `condredirect: fatal: unable to rewind: ${cannot}`);
  return redirect(io, 'condredirect', io.env['SENDER'], 'SENDER', [target], 99, readFromStart(io.stdinFd));
}

/** forward(1): queues the message (DTLINE in front) to every address, envelope sender $NEWSENDER; exit 0. */
export async function forward(io: ToolIo): Promise<number> {
  if (io.argv.length === 0) return die(io, 100, 'forward: usage: forward address [ address ... ]');
  return redirect(io, 'forward', io.env['NEWSENDER'], 'NEWSENDER', io.argv, 0, readOn(io.stdinFd));
}

async function redirect(
  io: ToolIo,
  name: string,
  sender: string | undefined,
  senderVar: string,
  to: readonly string[],
  okCode: number,
  body: ReturnType<typeof readOn>,
): Promise<number> {
  const dtline = io.env['DTLINE'];
  if (sender === undefined) return die(io, 100, `${name}: fatal: ${senderVar} not set`);
  if (dtline === undefined) return die(io, 100, `${name}: fatal: DTLINE not set`);
  const r = await queueMessage(io.root, sender, to, dtline, body);
  if (!r.ok) return die(io, r.code, `${name}: fatal: ${r.text}`);
  return die(io, okCode, `${name}: qp ${r.id}`);
}

/**
 * bouncesaying(1): without a program, prints ERROR and exits 100 (a bounce saying it). With one: exit 0 → bounce;
 * 111 or a crash → 111; anything else → 0 (the delivery goes on).
 */
export async function bouncesaying(io: ToolIo): Promise<number> {
  const [text, ...program] = io.argv;
  if (text === undefined) return die(io, 100, 'bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]');
  if (program.length > 0) {
    const code = childCode(await runOnStdin(io, program));
    if (code === 'crashed') return die(io, 111, 'bouncesaying: fatal: child crashed');
    if (code === 111) return die(io, 111, 'bouncesaying: fatal: temporary child error');
    if (code !== 0) return 0;
  }
  return die(io, 100, text);
}

/** except(1): runs the program and turns its 0 into 100 and its 100 into 0; other codes pass; a crash is 111. */
export async function except(io: ToolIo): Promise<number> {
  if (io.argv.length === 0) return die(io, 100, 'except: usage: except program [ arg ... ]');
  // As in qmail, a program that cannot be run counts as its forked child's exit: 100 (so 0 here) or 111.
  const code = childCode(await runOnStdin(io, io.argv));
  if (code === 'crashed') return die(io, 111, 'except: fatal: child crashed');
  if (code === 0) return 100;
  if (code === 100) return 0;
  return code;
}
