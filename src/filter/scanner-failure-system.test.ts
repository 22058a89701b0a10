// quail filter with scanners that fail (fake clamd and spamd on 127.0.0.1): the SMTP client gets qmail's plain 451,
// never the scanner's address or answer (those go to the log); a spamd that dribbles is cut at QUAIL_SCANTIMEOUT.
// tier: system (needs quail start, swaks)
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listenerPort, quailOnPath, setupRoot, startProcess, swaksAsync, waitFor } from '../../test/support/start.js';

/** A fake scanner: reads the request, then `answer` decides what the client gets (after spamc's half-close too). */
async function fakeScanner(answer: (c: Socket) => void): Promise<Server> {
  const srv = createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => undefined);
    c.resume();
    answer(c);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

const portOf = (srv: Server): number => (srv.address() as AddressInfo).port;

/** A mail root with joe@example.com and `quail filter` behind a two-line script: its bin/ and the QMAILQUEUE setting. */
function filterRoot(root: string): { bin: string; filter: string } {
  setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe'] }]);
  const bin = quailOnPath(root);
  writeFileSync(join(bin, 'quail-filter'), '#!/bin/sh\nexec quail filter\n', { mode: 0o755 });
  return { bin, filter: `QMAILQUEUE="${join(bin, 'quail-filter')}"` };
}

void test('a failing scanner: the client gets a plain 451 naming no host, port or scanner text; the log has it all', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-scanfail-'));
  const timers = new Set<NodeJS.Timeout>();
  // clamd that answers an error naming its own files; spamd that dribbles a "not spam" answer a byte at a time
  const clamd = await fakeScanner((c) => c.end('ERROR: /var/lib/clamav/secret-main.cvd is corrupt\0'));
  const spamd = await fakeScanner((c) => {
    const answer = Buffer.from('SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.1 / 5.0\r\n\r\n', 'latin1');
    let i = 0;
    const t = setInterval(() => {
      if (i < answer.length && !c.destroyed) c.write(answer.subarray(i, ++i));
      else {
        clearInterval(t);
        c.end();
      }
    }, 300);
    timers.add(t);
  });
  const p = { killGroup: (): void => undefined, log: (): string => '' };
  try {
    const { bin, filter } = filterRoot(root);
    writeFileSync(
      join(root, 'control', 'tcp.smtp'),
      [
        `127.0.0.1:allow,${filter},QUAIL_CLAMD="127.0.0.1:${portOf(clamd)}"`,
        // each gap (300 ms) is far inside the scan deadline, the whole answer (14 s) far past it
        `127.0.0.2:allow,${filter},QUAIL_SPAMD="127.0.0.1:${portOf(spamd)}",QUAIL_SCANTIMEOUT="2"`,
        '',
      ].join('\n'),
    );
    Object.assign(p, await startProcess(root, 30_000, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` }));
    const port = listenerPort(root, 'smtp');
    const send = (ip: string): Promise<{ status: number | null; out: string }> =>
      swaksAsync(port, ['--to', 'joe@example.com', '--local-interface', ip]);
    const refusal = (out: string): string => out.split('\n').find((l) => /^<\*\* /.test(l)) ?? `(none) ${out}`;

    for (const [ip, scanner] of [
      ['127.0.0.1', clamd],
      ['127.0.0.2', spamd],
    ] as const) {
      const r = await send(ip);
      const line = refusal(r.out);
      assert.match(line, /^<\*\* +451 4\.3\.0 mail server temporarily rejected message \(#4\.3\.0\)$/, ip);
      assert.doesNotMatch(line, new RegExp(`${portOf(scanner)}|clamd|spamd|ERROR|secret`), ip);
    }
    const newDir = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    assert.equal(readdirSync(newDir).length, 0, 'nothing passed unscanned');
    // the detail is in the log (batched a few ms behind the replies)
    await waitFor(
      () =>
        new RegExp(
          `smtp\\.queue-failed.*detail=.*clamd at 127\\.0\\.0\\.1:${portOf(clamd)}: ERROR: .*secret-main`,
        ).test(p.log()) &&
        new RegExp(`smtp\\.queue-failed.*detail=.*spamd at 127\\.0\\.0\\.1:${portOf(spamd)}: no complete answer`).test(
          p.log(),
        ),
      10_000,
      () => `both scanners' details in the log:\n${p.log()}`,
    );
  } finally {
    p.killGroup();
    for (const t of timers) clearInterval(t);
    clamd.close();
    spamd.close();
    rmSync(root, { recursive: true, force: true });
  }
});

void test("stalling scanners: the scans share one deadline inside QUAIL_FILTERTIMEOUT, so the client's 451 is logged with the scan that ran out", async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-scanstall-'));
  const timers = new Set<NodeJS.Timeout>();
  // one pair that never answers; one where clamd says clean after 3 s and spamd never answers
  const stallClamd = await fakeScanner(() => undefined);
  const stallSpamd = await fakeScanner(() => undefined);
  const slowClamd = await fakeScanner((c) => {
    timers.add(setTimeout(() => c.end('stream: OK\0'), 3000));
  });
  const servers = [stallClamd, stallSpamd, slowClamd];
  const p = { killGroup: (): void => undefined, log: (): string => '' };
  try {
    const { bin, filter } = filterRoot(root);
    const spamd = `QUAIL_SPAMD="127.0.0.1:${portOf(stallSpamd)}"`;
    writeFileSync(
      join(root, 'control', 'tcp.smtp'),
      [
        // a scan timeout that cannot fit in the filter's: clamd gets what fits (9 s), not 30 s after smtpd's kill at 10
        `127.0.0.1:allow,${filter},QUAIL_CLAMD="127.0.0.1:${portOf(stallClamd)}",${spamd},QUAIL_SCANTIMEOUT="30",QUAIL_FILTERTIMEOUT="10"`,
        // 8 s for both scans: clamd takes 3 of them, spamd gets the rest (not 8 more, past smtpd's kill at 10)
        `127.0.0.2:allow,${filter},QUAIL_CLAMD="127.0.0.1:${portOf(slowClamd)}",${spamd},QUAIL_SCANTIMEOUT="8",QUAIL_FILTERTIMEOUT="10"`,
        '',
      ].join('\n'),
    );
    Object.assign(p, await startProcess(root, 30_000, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` }));
    const port = listenerPort(root, 'smtp');
    const refusal = (out: string): string => out.split('\n').find((l) => /^<\*\* /.test(l)) ?? `(none) ${out}`;
    const [stalled, slow] = await Promise.all(
      ['127.0.0.1', '127.0.0.2'].map((ip) => swaksAsync(port, ['--to', 'joe@example.com', '--local-interface', ip])),
    );
    for (const r of [stalled, slow])
      assert.match(refusal(r?.out ?? ''), /^<\*\* +451 4\.3\.0 mail server temporarily rejected message \(#4\.3\.0\)$/);
    const failed = (): string[] =>
      p
        .log()
        .split('\n')
        .filter((l) => /smtp\.queue-failed/.test(l));
    await waitFor(
      () => failed().length === 2,
      10_000,
      () => `two smtp.queue-failed:\n${p.log()}`,
    );
    const of = (ip: string): string => failed().find((l) => l.includes(`ip=${ip} `)) ?? '';
    assert.match(
      of('127.0.0.1'),
      new RegExp(`detail=.*clamd at 127\\.0\\.0\\.1:${portOf(stallClamd)}: no complete answer`),
    );
    assert.match(of('127.0.0.1'), /QUAIL_SCANTIMEOUT=30 s does not fit in QUAIL_FILTERTIMEOUT=10 s/);
    assert.match(
      of('127.0.0.2'),
      new RegExp(`detail=.*spamd at 127\\.0\\.0\\.1:${portOf(stallSpamd)}: no complete answer`),
    );
    assert.equal(readdirSync(join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new')).length, 0);
  } finally {
    p.killGroup();
    for (const t of timers) clearTimeout(t);
    for (const s of servers) s.close();
    rmSync(root, { recursive: true, force: true });
  }
});
