// quail maildirserial's switches from the command line: without -b a refused message stays; -b bounces it once into
// the root's queue; -t 0 bounces a temporary refusal; exit codes 0, 111 and 100 as serialmail's.
// tier: system (needs the quail CLI: init, maildirserial)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue } from '../queue/index.js';
import { testSmtp } from '../../test/support/testsmtp.js';
import { MAIN, quail } from '../../test/support/start.js';

const DOMAIN = 'some.example.com';

/** Asynchronously: the customer's SMTP server runs in this process. */
function serial(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MAIN, 'maildirserial', ...args]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

async function queued(root: string): Promise<string[]> {
  const q = await openQueue(root, { create: false });
  try {
    const out: string[] = [];
    for (const id of await q.ids()) out.push(...((await q.envelope(id))?.recipients ?? []).map((r) => r.original));
    return out;
  } finally {
    q.close();
  }
}

void test('maildirserial: no -b keeps a 5xx (exit 111); -b bounces it once; -t 0 bounces a 4xx; bad -t is exit 100', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-serial-'));
  quail(['init', '--root', root, '--me', 'isp.test']);
  const maildir = join(root, 'Maildir');
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(maildir, sub), { recursive: true });
  const born = Math.floor(Date.now() / 1000) - 60; // a minute old: within the default lifetime, past -t 0
  const put = (n: number, who: string): void =>
    writeFileSync(
      join(maildir, 'new', `${born + n}.M${n}P1.isp.test`),
      `Return-Path: <${who}-sender@far.test>\nDelivered-To: ${DOMAIN}-${who}@${DOMAIN}\nSubject: ${who}\n\nbody\n`,
    );
  put(1, 'refused');
  put(2, 'later');
  put(3, 'ok');
  const customer = await testSmtp('127.0.0.1', {
    rcpt: (a) =>
      a.startsWith('refused@') ? '550 5.1.1 no such user' : a.startsWith('later@') ? '451 4.3.0 busy' : undefined,
  });
  const args = ['--root', root, maildir, `${DOMAIN}-`, `127.0.0.1:${customer.port}`, 'isp.test'];
  try {
    const bad = await serial(['-t', 'soon', ...args]);
    assert.equal(bad.code, 100, bad.out);
    assert.match(bad.out, /bad -t soon: give the lifetime in seconds/);
    // Without -b: the 5xx and the 4xx stay, the good one goes; 111 (something for the next run); nothing queued.
    const plain = await serial(args);
    assert.equal(plain.code, 111, plain.out);
    assert.match(plain.out, /: refused: .*550/);
    assert.match(plain.out, /: kept: .*451/);
    assert.equal(readdirSync(join(maildir, 'new')).length, 2);
    assert.deepEqual(await queued(root), []);
    // -b: the 5xx bounces to its Return-Path and goes; the 4xx is still kept.
    const b = await serial(['-b', ...args]);
    assert.equal(b.code, 111, b.out);
    assert.match(b.out, /: bounced: .*550/);
    assert.deepEqual(await queued(root), ['refused-sender@far.test']);
    assert.equal(readdirSync(join(maildir, 'new')).length, 1);
    // -b -t 0: the 4xx is past its lifetime: bounced, and nothing is left (exit 0).
    const t0 = await serial(['-b', '-t', '0', ...args]);
    assert.equal(t0.code, 0, t0.out);
    assert.match(t0.out, /: bounced: .*451/);
    assert.deepEqual((await queued(root)).sort(), ['later-sender@far.test', 'refused-sender@far.test']);
    assert.deepEqual(readdirSync(join(maildir, 'new')), []);
    assert.deepEqual(
      customer.messages.flatMap((m) => m.recipients),
      [`ok@${DOMAIN}`],
    );
  } finally {
    await customer.close();
  }
});
