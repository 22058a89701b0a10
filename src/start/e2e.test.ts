// End to end with a real client (swaks): SMTP in → a virtual domain's Maildir, and relay → a sink on 127.0.0.2.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { swaks } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

interface SinkMessage {
  readonly from: string;
  readonly to: string[];
  readonly data: string;
  readonly peer: string;
}

/** A minimal SMTP sink: accepts everything, records envelope and data. */
function sink(host: string): Promise<{ server: Server; port: number; got: SinkMessage[] }> {
  const got: SinkMessage[] = [];
  const server = createServer((sock) => {
    let buf = '';
    let from = '';
    let to: string[] = [];
    let inData = false;
    sock.write('220 sink ESMTP\r\n');
    sock.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          got.push({ from, to, data: buf.slice(0, end + 2), peer: sock.remoteAddress ?? '' });
          buf = buf.slice(end + 5);
          inData = false;
          sock.write('250 ok\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') sock.write('250 sink\r\n');
        else if (verb === 'MAIL') {
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          to = [];
          sock.write('250 ok\r\n');
        } else if (verb === 'RCPT') {
          to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          sock.write('250 ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go\r\n');
        } else if (verb === 'QUIT') {
          sock.end('221 bye\r\n');
          return;
        } else sock.write('250 ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve({ server, port: (server.address() as AddressInfo).port, got }));
  });
}

void test('swaks → quail start → example.com postmaster Maildir; relay from 127.0.0.1 → sink on 127.0.0.2; 127.0.0.3 may not relay', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-e2e-'));
  chmodSync(root, 0o755);
  const remote = await sink('127.0.0.2');
  let child: ChildProcess | undefined;
  let log = '';
  try {
    const init = spawnSync(process.execPath, [MAIN, 'init', '--root', root, '--domain', 'example.com'], {
      encoding: 'utf8',
    });
    assert.equal(init.status, 0, init.stderr);
    writeFileSync(join(root, 'control', 'tcp.smtp'), '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n');
    writeFileSync(join(root, 'control', 'smtproutes'), `remote.test:127.0.0.2:${remote.port}\n`);
    child = spawn(
      process.execPath,
      [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((r) => child?.on('exit', (code) => r(code)));
    const stateFile = join(root, 'run', 'quail.json');
    await waitFor(
      () => log.includes('quail.started') && existsSync(stateFile),
      20_000,
      () => `quail.started\n${log}`,
    );
    const st = JSON.parse(readFileSync(stateFile, 'utf8')) as { listeners: Array<{ port: number; kind: string }> };
    const port = st.listeners.find((l) => l.kind === 'smtp')?.port ?? 0;

    // 1. a virtual domain's mailbox
    const local = swaks(port, [
      '--to',
      'postmaster@example.com',
      '--header',
      'Subject: e2e local',
      '--body',
      'to the Maildir',
    ]);
    assert.equal(local.status, 0, local.out);
    const newDir = join(root, 'domains', 'example.com', 'postmaster', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(newDir).length === 1,
      20_000,
      () => `Maildir delivery\n${log}`,
    );
    const file = readFileSync(join(newDir, readdirSync(newDir)[0] ?? ''), 'latin1');
    assert.match(file, /^Return-Path: <sender@client\.test>\nDelivered-To: example\.com-postmaster@example\.com\n/);
    assert.match(file, /Received: from [^\n]*\(127\.0\.0\.1\)\n {2}by [^\n]* with ESMTP; /);
    assert.match(file, /Subject: e2e local\n[\s\S]*to the Maildir/);

    // 2. relay from a permitted client to a remote domain, delivered to the sink on another loopback address
    const relay = swaks(port, ['--to', 'joe@remote.test', '--header', 'Subject: e2e remote', '--body', 'to the sink']);
    assert.equal(relay.status, 0, relay.out);
    await waitFor(
      () => remote.got.length === 1,
      20_000,
      () => `remote delivery\n${log}`,
    );
    const m = remote.got[0];
    assert.equal(m?.from, 'sender@client.test');
    assert.deepEqual(m?.to, ['joe@remote.test']);
    assert.match(m?.data ?? '', /Subject: e2e remote\r\n[\s\S]*to the sink/);
    assert.match(m?.peer ?? '', /127\.0\.0\.1$/); // quail's connection came to 127.0.0.2 from the default source

    // 3. the same from 127.0.0.3 (no RELAYCLIENT): refused at RCPT, nothing reaches the sink
    const denied = swaks(port, ['--local-interface', '127.0.0.3', '--to', 'joe@remote.test', '--quit-after', 'RCPT']);
    assert.notEqual(denied.status, 0);
    assert.match(denied.out, /553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    assert.equal(remote.got.length, 1);
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    remote.server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
