// kind `inject` (FORMAT.md 8): control files, env, args, stdin → quail's injector with a recording queue.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { errText } from '../../../src/core/index.js';
import { Control } from '../../../src/control/index.js';
import { parseInjectArgv, runInject, type InjectTarget } from '../../../src/inject/index.js';
import type { NewMessage, QueueId } from '../../../src/queue/index.js';
import type { KindHandler, ScenarioResult } from '../types.js';
import {
  bytesText,
  decodeBytes,
  escapeBytes,
  makePlaceholders,
  normaliseTokens,
  shortDiff,
  textBytes,
} from '../world.js';

interface Recorded {
  readonly envelope_sender: string;
  readonly envelope_recipients: readonly string[];
  readonly envelope_raw: string;
  readonly message: string;
}

/** A QueueStore stand-in that keeps what would have been queued (qmail's QMAILQUEUE recorder). */
function recordingTarget(into: Recorded[], unsubst: (t: string) => string): InjectTarget {
  return {
    async inject(m: NewMessage): Promise<QueueId> {
      const chunks: Buffer[] = [];
      if (Buffer.isBuffer(m.data)) chunks.push(m.data);
      else for await (const c of m.data) chunks.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : (c as Buffer));
      // qmail-queue's envelope on fd 1: F<sender>\0, T<recipient>\0 each, then \0.
      const raw = Buffer.concat([
        textBytes(`F${m.sender}\0`),
        ...m.recipients.map((r) => textBytes(`T${r}\0`)),
        Buffer.from([0]),
      ]);
      into.push({
        envelope_sender: m.sender,
        envelope_recipients: [...m.recipients],
        envelope_raw: escapeBytes(raw),
        message: unsubst(normaliseTokens(bytesText(Buffer.concat(chunks)))),
      });
      return `recorded-${into.length}` as QueueId;
    },
  };
}

export const injectKind: KindHandler = async (scenario, ctx) => {
  const ph = makePlaceholders(join(ctx.workDir, 'root'), join(ctx.workDir, 'qmail'));
  const controlDir = join(ph.qmail, 'control');
  mkdirSync(controlDir, { recursive: true });
  mkdirSync(ph.root, { recursive: true });
  const input = scenario.input;
  for (const [name, content] of Object.entries((input['control'] ?? {}) as Record<string, unknown>)) {
    const bytes = typeof content === 'string' ? textBytes(ph.subst(content)) : decodeBytes(content);
    writeFileSync(join(controlDir, name), bytes);
  }
  // FORMAT.md 8: the scenario's env is the whole environment apart from PATH and QMAILQUEUE.
  const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
  for (const [k, v] of Object.entries((input['env'] ?? {}) as Record<string, unknown>)) env[k] = ph.subst(String(v));
  const argv = ((input['args'] ?? []) as unknown[]).map((a) => ph.subst(String(a)));
  const stdinBytes = input['input'] === undefined ? Buffer.alloc(0) : decodeBytes(input['input']);

  const queued: Recorded[] = [];
  let stdout = '';
  let stderr = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      stdout += bytesText(chunk);
      cb();
    },
  });
  let exit: number;
  try {
    const args = parseInjectArgv(argv);
    exit = (
      await runInject({
        name: 'quail inject',
        args,
        control: new Control(ph.qmail),
        env,
        stdin: Readable.from([stdinBytes]),
        stdout: out,
        stderr: (t) => {
          stderr += t;
        },
        openTarget: () => Promise.resolve(recordingTarget(queued, ph.unsubst)),
      })
    ).exit;
  } catch (err) {
    stderr += `quail inject: fatal: ${errText(err)}\n`;
    exit = 100; // argument errors are permanent, like qmail-inject's usage exit
  }
  const actual: Record<string, unknown> = {
    exit,
    stdout: ph.unsubst(normaliseTokens(stdout)),
    stderr: ph.unsubst(stderr),
    queued,
  };
  const diffs: string[] = [];
  for (const key of ['exit', 'stdout', 'stderr', 'queued']) {
    const d = shortDiff(key, scenario.outcome[key], actual[key]);
    if (d) diffs.push(d);
  }
  const result: ScenarioResult = diffs.length === 0 ? { status: 'pass' } : { status: 'fail', diff: diffs.join('; ') };
  return result;
};
