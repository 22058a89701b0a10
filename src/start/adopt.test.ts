// An SMTP process that dies before it greets a connection: where root accepts and hands each connection over (a
// listener named by host name, which root cannot share with the SMTP processes) it keeps its copy until the greeting
// and the next process greets it; where the SMTP processes accept on the port themselves (privchild.ts directAccept:
// one process, or several that ask root to count each connection) the connection is closed at once, never left
// hanging, and the next process serves the next one.
// tier: system (needs quail start as root: SIGKILL of the smtpd child)
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, holdersOf, setupRoot, startProcess, type QuailProcess } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const asRoot = process.getuid?.() === 0;

function state(root: string): { pid?: number; smtpd?: { pid?: number; pids?: number[] } } {
  return JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
    pid?: number;
    smtpd?: { pid?: number; pids?: number[] };
  };
}

/**
 * quail start with `processes` SMTP processes and greetdelay=3 (the process holds a connection 3 s before its first
 * byte, qmail's greetdelay patch) on a listener at `host` (127.0.0.1, or a name root cannot share); a client connects
 * to 127.0.0.1, the process holding it is killed during the delay. `then` checks what the client saw.
 */
async function killDuringGreetDelay(
  processes: number,
  host: string,
  then: (c: { got: () => string; closed: () => boolean; client: Socket; log: () => string }) => Promise<void>,
): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quail-adopt-'));
  let client: Socket | undefined;
  let proc: QuailProcess | undefined;
  try {
    setupRoot(root, 'mx.adopt.test', [{ domain: 'adopt.test', boxes: ['box'] }]);
    const port = await freePort();
    writeFileSync(join(root, 'control', 'listeners'), `${host}:${port} smtp greetdelay=3\n`);
    writeFileSync(join(root, 'control', 'smtpdprocesses'), `${processes}\n`);
    proc = await startProcess(root, 60_000, {}, false);
    const log = proc.log;
    const rootPid = state(root).pid;
    assert.equal(state(root).smtpd?.pids?.length ?? 1, processes, 'quail.json names the SMTP processes');

    let got = '';
    let closed = false;
    const c = connect({ host: '127.0.0.1', port });
    client = c;
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    c.on('close', () => (closed = true));
    c.on('error', () => undefined);
    // an SMTP process has it (and is waiting out the greet delay): now that one dies
    await waitFor(() => /smtp\.connect /.test(log()), 20_000, log);
    const holder = holdersOf(port, c.localPort ?? 0).find((p) => p !== rootPid);
    assert.ok(holder !== undefined, 'an SMTP process holds the connection');
    process.kill(holder, 'SIGKILL');
    await waitFor(
      () => /smtpd\.crashed[^\n]*\n(?:.*\n)*.*smtpd\.started/.test(log()),
      30_000,
      () => `smtpd replaced\n${log()}`,
    );
    await then({ got: () => got, closed: () => closed, client: c, log });
  } finally {
    client?.destroy();
    proc?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
}

// `localhost` is a name (127.0.0.1 in /etc/hosts): root binds it by Node's listen, accepts, and hands each connection over
void test(
  'several SMTP processes, root handing over: the one killed during greetdelay leaves the client to the next, which greets and serves it',
  { skip: !asRoot && 'needs root' },
  () =>
    killDuringGreetDelay(2, 'localhost', async ({ got, closed, client, log }) => {
      await waitFor(
        () => got().includes('\n') || closed(),
        30_000,
        () => `greeting\n${log()}`,
      );
      assert.match(got(), /^220 /, `greeted by another process, not closed (got ${JSON.stringify(got())})`);
      client.write('EHLO client.test\r\nQUIT\r\n');
      await waitFor(
        () => /\r\n221 /.test(got()) || closed(),
        30_000,
        () => got(),
      );
      assert.match(got(), /\r\n250[- ]/);
      assert.match(got(), /\r\n221 /);
      assert.equal(got().match(/^220 /gm)?.length, 1, 'one greeting');
    }),
);

for (const processes of [1, 2])
  void test(
    `${processes} SMTP process(es) accepting themselves: the one killed during greetdelay closes its client at once, not left waiting`,
    { skip: !asRoot && 'needs root' },
    () =>
      killDuringGreetDelay(processes, '127.0.0.1', async ({ got, closed, log }) => {
        // the kernel closes the dead process's descriptor: the client sees the end well before any timeout
        await waitFor(closed, 10_000, () => `closed\n${log()}`);
        assert.equal(got(), '', 'nothing was written to it');
        // and the listener serves the next client from the new process
        const port = Number(/listeners=127\.0\.0\.1:(\d+)/.exec(log())?.[1]);
        const again = await new Promise<string>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port });
          let out = '';
          let quit = false;
          s.on('data', (d: Buffer) => {
            out += d.toString('latin1');
            if (!quit && /^220 .*\r\n/.test(out)) {
              quit = true;
              s.write('QUIT\r\n');
            }
          });
          s.on('error', reject);
          s.on('close', () => resolve(out));
        });
        assert.match(again, /^220 [^\r\n]*\r\n221 /);
      }),
  );
