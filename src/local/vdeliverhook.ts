// In-process `| quail vdeliver '' POLICY`: src/vdeliver run inside the local worker with this component's runners.
import { basename, dirname, resolve } from 'node:path';
import { errText } from '../core/index.js';
import {
  parseVdeliverLine,
  vdeliver,
  type DotQmailRequest,
  type MailboxLookup,
  type ProgramRequest,
  type ReplyRunner,
  type VdeliverResult,
} from '../vdeliver/index.js';
import { reportText, resultOf } from './deliver.js';
import { defaultPath } from './env.js';
import type { ProgramCall, ProgramHook, ProgramHookResult } from './hook.js';
import { parseInstructions } from './instructions.js';
import { programVerdict, runProgram, type OutputChunk } from './program.js';
import { runQmailLocal } from './run.js';

/** A root's directory opened read-only for delivery; closed with the hook. */
export interface OpenedLookup extends MailboxLookup {
  close(): Promise<void>;
}

/** Opens the directory of a mail root read-only (src/start passes src/directory's openDirectory, readonly: true). */
export type OpenLookup = (root: string) => Promise<OpenedLookup>;

/** The root the program would have found: it runs in the home `ROOT/domains/<domain>` and takes ROOT from there. */
function rootOfHome(home: string): string | null {
  const h = home.replace(/\/+$/, '');
  return basename(dirname(h)) === 'domains' ? dirname(dirname(h)) : null;
}

const text = (fd: 1 | 2, s: string): OutputChunk => ({
  fd,
  data: Buffer.from(s.endsWith('\n') || s === '' ? s : `${s}\n`, 'latin1'),
});

/**
 * One per process (a local worker, or LocalDeliverer when not root): opens each root's directory once with `open`
 * (read-only, no migration), and keeps it open; `close()` ends the connections.
 */
export class VdeliverHook {
  private readonly dirs = new Map<string, Promise<OpenedLookup>>();

  /** `reply(root)`: how vacation replies of a root's mailboxes are queued (src/start); none: no replies. */
  constructor(
    private readonly open: OpenLookup,
    private readonly reply?: (root: string) => ReplyRunner,
  ) {}

  readonly run: ProgramHook = async (call) => {
    const line = parseVdeliverLine(`|${call.command}`);
    if (line === null) return null;
    const root = rootOfHome(call.home);
    if (root === null) return null;
    let dir: OpenedLookup;
    try {
      dir = await this.directory(root);
    } catch (err) {
      return { exit: { kind: 'exit', code: 111 }, output: [text(1, `Trouble in vdeliver: ${errText(err)}. (#4.3.0)`)] };
    }
    const r = await runVdeliverLine(call, root, dir, line.policy, this.reply?.(root));
    const code = r.result === 'success' ? 0 : r.result === 'failure' ? 100 : 111;
    return {
      exit: { kind: 'exit', code },
      output: r.report === '' ? [] : [text(1, r.report)],
      ...(r.result === 'success' && r.forward ? { forward: r.forward } : {}),
    };
  };

  private directory(root: string): Promise<OpenedLookup> {
    let d = this.dirs.get(root);
    if (d === undefined) {
      d = this.open(root);
      // A failed open is not kept: the next message tries again (the database may be back).
      void d.catch(() => this.dirs.delete(root));
      this.dirs.set(root, d);
    }
    return d;
  }

  async close(): Promise<void> {
    const all = [...this.dirs.values()];
    this.dirs.clear();
    for (const d of all) {
      try {
        await (await d).close();
      } catch {
        // never opened
      }
    }
  }
}

/**
 * One `| quail vdeliver '' POLICY` delivery from what the program line would have been given (its environment —
 * LOCAL, HOST, EXT, SENDER, DTLINE, RPLINE — message and namer). The in-process hook and the `quail vdeliver` program
 * (src/cli, when a real qmail-local runs the line) both call this, so a mailbox's `.qmail` and an alias's `|program`
 * target run through this component's runners (run.ts, program.ts) either way.
 */
export function runVdeliverLine(
  call: ProgramCall,
  root: string,
  directory: MailboxLookup,
  policy: string,
  reply?: ReplyRunner,
): Promise<VdeliverResult> {
  const e = call.env;
  const sender = e['SENDER'] ?? '';
  return vdeliver({
    root,
    directory,
    local: e['LOCAL'] ?? '',
    domain: e['HOST'] ?? '',
    ext: e['EXT'] ?? '',
    messagePath: call.messagePath,
    ...(call.message ? { message: call.message } : {}),
    sender,
    dtline: e['DTLINE'] ?? `Delivered-To: ${e['LOCAL'] ?? ''}@${e['HOST'] ?? ''}\n`,
    rpline: e['RPLINE'] ?? `Return-Path: <${sender}>\n`,
    policy,
    namer: call.namer,
    dotQmail: (req) => runMailboxDotQmail(call, root, req),
    program: (req) => runAliasProgram(call, req),
    ...(reply ? { reply } : {}),
  });
}

/**
 * A program vdeliver starts (a line of a mailbox's `.qmail`, an alias's target): program.ts's runner in `home` with
 * `env`. A vdeliver line there would hand the message back to the address that led to it: refused (deferral).
 */
async function nestedProgram(
  command: string,
  home: string,
  env: Record<string, string>,
  messagePath: string,
  where: string,
): Promise<ProgramHookResult> {
  if (parseVdeliverLine(`|${command}`) !== null) {
    return {
      exit: { kind: 'exit', code: 111 },
      output: [text(2, `${where} cannot hand its mail back to vdeliver. (#4.7.0)`)],
    };
  }
  const output: OutputChunk[] = [];
  const exit = await runProgram(command, { home, env, messagePath, onOutput: (c) => output.push(c), merged: true });
  return { exit, output };
}

/**
 * A program line of a mailbox's `.qmail`: run with the environment of the delivery (EXT, DEFAULT, RECIPIENT as for
 * the domain's `.qmail-default`, as vpopmail's programs inherit them) in the mailbox's home.
 */
function mailboxProgram(outer: ProgramCall, inner: ProgramCall): Promise<ProgramHookResult> {
  const env = { ...outer.env, HOME: inner.home, NEWSENDER: inner.env['NEWSENDER'] ?? outer.env['NEWSENDER'] ?? '' };
  return nestedProgram(inner.command, inner.home, env, inner.messagePath, `A mailbox's .qmail (${inner.home}/.qmail)`);
}

/**
 * An alias's `|program` target: run in the domain's directory with the delivery's environment (HOME = that
 * directory), read as qmail-local reads a program's exit (0 and 99 ok, 100 and 64/65/70/76/77/78/112 bounce, else defer).
 */
async function runAliasProgram(call: ProgramCall, req: ProgramRequest): Promise<VdeliverResult> {
  const r = await nestedProgram(
    req.command,
    req.home,
    { ...call.env, HOME: req.home },
    call.messagePath,
    `The alias target |${req.command}`,
  );
  const out = reportText(r.output); // cut as qmail-lspawn cuts a report (D.8.2)
  if (r.exit.kind === 'spawn-error') return { result: 'deferral', report: `${r.exit.text}\n` };
  if (r.exit.kind === 'signal') return { result: 'deferral', report: `${out}Aack, child crashed. (#4.3.0)\n` };
  switch (programVerdict(r.exit.code)) {
    case 'ok':
    case 'stop':
      return { result: 'success', report: out };
    case 'permanent':
      return { result: 'failure', report: out || `|${req.command} failed permanently. (#5.3.0)\n` };
    case 'temporary':
      return { result: 'deferral', report: out || `|${req.command} failed temporarily. (#4.3.0)\n` };
  }
}

/** How many file lines (Maildir and mbox) the run got to, from its `did F+W+P` report (null: it did not finish). */
function filesDone(output: readonly OutputChunk[]): number | null {
  const last = output.filter((c) => c.fd === 1).at(-1);
  const m = last ? /^did (\d+)\+\d+\+\d+\n$/.exec(last.data.toString('latin1')) : null;
  return m ? Number(m[1]) : null;
}

/**
 * vpopmail's per-user `.qmail`: the mailbox's file run by qmail-local's own runner (run.ts) in the mailbox's home,
 * `dash` and `ext` empty so it reads `.qmail` (an empty file means `./Maildir/`). When a line names the mailbox's own
 * Maildir, the quota is checked before anything runs and recorded (with the 90 % warnings) once that line delivered.
 */
async function runMailboxDotQmail(call: ProgramCall, root: string, req: DotQmailRequest): Promise<VdeliverResult> {
  const e = call.env;
  let files = 0;
  let own = 0;
  for (const ins of parseInstructions(req.text)) {
    if (ins.kind !== 'maildir' && ins.kind !== 'mbox') continue;
    files++;
    if (own === 0 && ins.kind === 'maildir' && resolve(req.home, ins.path) === resolve(req.maildir)) own = files;
  }
  if (own > 0) {
    const refused = await req.checkQuota();
    if (refused) return refused;
  }
  const run = await runQmailLocal(
    {
      user: e['USER'] ?? '',
      home: req.home,
      local: e['LOCAL'] ?? '',
      dash: '',
      ext: '',
      domain: e['HOST'] ?? '',
      sender: e['SENDER'] ?? '',
      defaultDelivery: './Maildir/\n',
    },
    {
      doit: true,
      messagePath: call.messagePath,
      path: e['PATH'] ?? defaultPath(root),
      namer: call.namer,
      injector: { kind: 'uid', uid: process.getuid?.() ?? -1 },
      programHook: (inner) => mailboxProgram(call, inner),
    },
  );
  const r = resultOf(run);
  if (r.result === 'success' && own > 0 && (filesDone(run.output) ?? 0) >= own) await req.delivered();
  const f = r.forward;
  return {
    result: r.result,
    report: r.report,
    ...(f ? { forward: { sender: f.sender, recipients: f.recipients, prepend: f.prepend } } : {}),
  };
}
