// A connection the smtpd child took but had not yet greeted when it died is greeted by the next child, not dropped.
// tier: system (needs quail start as root: SIGKILL of the smtpd child)
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, setupRoot, startProcess, type QuailProcess } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const asRoot = process.getuid?.() === 0;

function smtpdPid(root: string): number | undefined {
  const st = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as { smtpd?: { pid?: number } };
  return st.smtpd?.pid;
}

void test(
  'the smtpd child killed during greetdelay: the client is greeted by the next child, then served',
  { skip: !asRoot && 'needs root' },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-adopt-'));
    let client: Socket | undefined;
    let proc: QuailProcess | undefined;
    try {
      setupRoot(root, 'mx.adopt.test', [{ domain: 'adopt.test', boxes: ['box'] }]);
      const port = await freePort();
      // greetdelay: the child holds the connection for 3 s before its first byte (qmail's greetdelay patch)
      writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${port} smtp greetdelay=3\n`);
      // one SMTP process, so the one killed is the one holding the connection (whatever the CPUs)
      writeFileSync(join(root, 'control', 'smtpdprocesses'), '1\n');
      proc = await startProcess(root, 60_000, {}, false);
      const log = proc.log;
      const first = smtpdPid(root);
      assert.ok(first !== undefined, 'quail.json names the smtpd child');

      let got = '';
      let closed = false;
      client = connect({ host: '127.0.0.1', port });
      client.on('data', (c: Buffer) => (got += c.toString('latin1')));
      client.on('close', () => (closed = true));
      client.on('error', () => undefined);
      // the child has it (and is waiting out the greet delay): now it dies
      await waitFor(() => /smtp\.connect /.test(log()), 20_000, log);
      process.kill(first, 'SIGKILL');
      await waitFor(
        () => (smtpdPid(root) ?? first) !== first,
        30_000,
        () => `smtpd replaced\n${log()}`,
      );

      await waitFor(
        () => got.includes('\n') || closed,
        30_000,
        () => `greeting\n${log()}`,
      );
      assert.match(
        got,
        /^220 /,
        `the connection was greeted by the new child, not closed (got ${JSON.stringify(got)})`,
      );
      client.write('EHLO client.test\r\nQUIT\r\n');
      await waitFor(
        () => /\r\n221 /.test(got) || closed,
        30_000,
        () => got,
      );
      assert.match(got, /\r\n250[- ]/);
      assert.match(got, /\r\n221 /);
      assert.equal(got.match(/^220 /gm)?.length, 1, 'one greeting');
    } finally {
      client?.destroy();
      proc?.killGroup();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
