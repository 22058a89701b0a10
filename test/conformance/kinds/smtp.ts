// kind `smtp` (FORMAT.md 4): each session runs on quail's real SMTP listener over loopback, with a recording queue.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Control } from '../../../src/control/index.js';
import { qmailQueueRefusal } from '../../../src/filter/index.js';
import type { NewMessage, QueueId } from '../../../src/queue/types.js';
import { SmtpListener, type SessionEnv, type SessionSummary } from '../../../src/smtpd/index.js';
import { newmrh } from '../../../src/users/index.js';
import {
  normaliseReceivedProtocol,
  normaliseSmtpEhlo,
  normaliseSmtpEnhancedCodes,
  normaliseSmtpQueueId,
  smtpSessionEnv,
} from '../normalise.js';
import type { KindHandler } from '../types.js';
import {
  bytesText,
  cdbRecords,
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

interface SessionInput {
  readonly env?: Record<string, string>;
  readonly input: unknown;
  readonly hold_open_seconds?: number;
}

/** The stand-in for QMAILQUEUE: records what was handed over, then fails as QO_QQ_EXIT says. */
function recordingQueue(into: Recorded[], aborted: { n: number }, env: SessionEnv, unsubst: (t: string) => string) {
  return {
    async inject(m: NewMessage): Promise<QueueId> {
      const chunks: Buffer[] = [];
      try {
        if (Buffer.isBuffer(m.data)) chunks.push(m.data);
        else
          for await (const c of m.data) chunks.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : (c as Buffer));
      } catch (err) {
        aborted.n++; // smtpd abandoned the message (size, hops, bare LF...): nothing is queued
        throw err;
      }
      const raw = Buffer.concat([
        textBytes(`F${m.sender}\0`),
        ...m.recipients.map((r) => textBytes(`T${r}\0`)),
        Buffer.from([0]),
      ]);
      into.push({
        envelope_sender: m.sender,
        envelope_recipients: [...m.recipients],
        envelope_raw: escapeBytes(raw),
        message: unsubst(normaliseReceivedProtocol(normaliseTokens(bytesText(Buffer.concat(chunks))))),
      });
      const code = Number(env['QO_QQ_EXIT'] ?? '0');
      if (code !== 0) {
        throw qmailQueueRefusal(code); // qmail.c's qmail_close table, the one quail's QMAILQUEUE filter uses
      }
      return `recorded-${into.length}` as QueueId;
    },
  };
}

async function runOne(root: string, s: SessionInput, unsubst: (t: string) => string, subst: (t: string) => string) {
  const queued: Recorded[] = [];
  const aborted = { n: 0 };
  const given: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.env ?? {})) given[k] = subst(v);
  const env = smtpSessionEnv(given);
  let summary: SessionSummary | undefined;
  const sessionDone = new Promise<void>((resolve) => {
    const listener = new SmtpListener(
      { host: '127.0.0.1', port: 0, kind: 'smtp', options: {} },
      {
        controlFor: () => new Control(root),
        queue: recordingQueue(queued, aborted, env, unsubst),
        envFor: () => env,
        onSession: (sum) => {
          summary = sum;
          resolve();
        },
      },
    );
    void listener.listen().then(async (addr) => {
      const out = await converse(addr.port, decodeBytes(s.input), s.hold_open_seconds ?? 0);
      await listener.close(100);
      output = out;
    });
  });
  let output = '';
  await sessionDone;
  // wait for the client side to have collected everything
  for (let i = 0; i < 100 && output === ''; i++) await new Promise((r) => setTimeout(r, 20));
  const text = unsubst(normaliseSmtpQueueId(normaliseTokens(normaliseSmtpEnhancedCodes(normaliseSmtpEhlo(output)))));
  return { exit: summary?.exit ?? -1, output: text, queued, aborted: aborted.n };
}

/** Writes the whole input at once, keeps the write side open hold seconds (or until the server hangs up). */
function converse(port: number, input: Buffer, holdSeconds: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let timer: NodeJS.Timeout | undefined;
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(bytesText(Buffer.concat(chunks)));
    });
    sock.on('end', () => sock.end());
    sock.write(input, () => {
      if (holdSeconds > 0) timer = setTimeout(() => sock.end(), holdSeconds * 1000);
      else sock.end();
    });
  });
}

export const smtpKind: KindHandler = async (scenario, ctx) => {
  const ph = makePlaceholders(join(ctx.workDir, 'root'), join(ctx.workDir, 'qmail'));
  const controlDir = join(ph.qmail, 'control');
  mkdirSync(controlDir, { recursive: true });
  mkdirSync(ph.root, { recursive: true });
  const input = scenario.input;
  const control = (input['control'] ?? {}) as Record<string, unknown>;
  for (const [name, content] of Object.entries(control)) {
    writeFileSync(
      join(controlDir, name),
      typeof content === 'string' ? textBytes(ph.subst(content)) : decodeBytes(content),
    );
  }
  const diffs: string[] = [];
  const o = scenario.outcome;
  if ('morercpthosts' in control) {
    let exit = 0;
    try {
      newmrh(ph.qmail);
    } catch {
      exit = 111;
    }
    const cdb = exit === 0 ? readFileSync(join(controlDir, 'morercpthosts.cdb')) : null;
    const checks: Array<[string, unknown]> = [
      ['qmail_newmrh_exit', exit],
      ['morercpthosts_cdb_hex', cdb?.toString('hex') ?? null],
      ['morercpthosts_cdb_records', cdb ? cdbRecords(cdb, ph.unsubst) : null],
    ];
    for (const [k, v] of checks)
      if (k in o) {
        const d = shortDiff(k, o[k], v);
        if (d) diffs.push(d);
      }
  }
  const sessions = (input['sessions'] ?? []) as SessionInput[];
  const expected = (o['sessions'] ?? []) as Array<Record<string, unknown>>;
  for (const [i, s] of sessions.entries()) {
    const got = await runOne(ph.qmail, s, ph.unsubst, ph.subst);
    const exp = expected[i] ?? {};
    const actual: Record<string, unknown> = { exit: got.exit, output: got.output, queued: got.queued };
    if (got.aborted > 0 || 'qmail_queue_runs_aborted' in exp) actual['qmail_queue_runs_aborted'] = got.aborted;
    for (const key of ['exit', 'output', 'queued', 'qmail_queue_runs_aborted']) {
      if (!(key in exp) && !(key in actual)) continue;
      const d = shortDiff(`session ${i} ${key}`, exp[key] ?? (key === 'queued' ? [] : undefined), actual[key]);
      if (d) diffs.push(d);
    }
  }
  return diffs.length === 0 ? { status: 'pass' } : { status: 'fail', diff: diffs.join('; ') };
};
