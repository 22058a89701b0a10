// One run of the inject command with its exit status (0, 100, 111): shared by the CLI and the conformance kind.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { errText, QuailError, quoteAddress, quoteLocal } from '../core/index.js';
import type { Control } from '../control/index.js';
import { commitMessage, prepareMessage, type InjectArgs, type InjectResult, type InjectTarget } from './inject.js';
import type { InjectEnv } from './rewrite.js';

export interface InjectRun {
  /** Prefix of error lines, e.g. `quail inject` or `sendmail`. */
  readonly name: string;
  readonly args: InjectArgs;
  readonly control: Control;
  readonly env: InjectEnv;
  readonly stdin: Readable;
  /** Where -n prints the message. */
  readonly stdout: Writable;
  readonly stderr: (text: string) => void;
  /** Opened only when a message is ready to be queued (so -n and syntax errors never touch the queue). */
  readonly openTarget: () => Promise<InjectTarget>;
  readonly now?: () => number;
  readonly pid?: number;
  readonly uid?: number;
}

/**
 * Runs one injection. Nothing is printed on success. Errors print `NAME: fatal: message` and give 100
 * (permanent: bad address, no recipients, bad header syntax) or 111 (temporary: anything else).
 */
export async function runInject(r: InjectRun): Promise<{ exit: number; result?: InjectResult }> {
  try {
    const m = await prepareMessage(r.stdin, r.args, {
      control: r.control,
      env: r.env,
      ...(r.now ? { now: r.now } : {}),
      ...(r.pid !== undefined ? { pid: r.pid } : {}),
    });
    if (r.args.print) {
      // qmail-inject -n puts the envelope sender first, as qmail-local's Return-Path line (quote2: the whole address
      // quoted when it has no '@')
      const at = m.sender.lastIndexOf('@');
      const quoted = m.sender === '' ? '' : at < 0 ? quoteLocal(m.sender) : quoteAddress(m.sender);
      r.stdout.write(`Return-Path: <${quoted}>\n`, 'latin1');
      await pipeline(m.data, r.stdout, { end: false });
      return { exit: 0 };
    }
    const target = await r.openTarget();
    const result = await commitMessage(target, m, r.uid);
    return { exit: 0, result };
  } catch (err) {
    const temporary = !(err instanceof QuailError) || err.temporary;
    r.stderr(`${r.name}: fatal: ${errText(err)}\n`);
    return { exit: temporary ? 111 : 100 };
  }
}
