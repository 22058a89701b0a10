// Several SMTP processes (control/smtpdprocesses): each accepts on the port itself and asks root, which counts
// maxconn=, maxperip= and stress mode across them, before it serves a connection; AUTH failures seen by one slow down
// guesses on the others; one killed leaves the other serving and its sessions counted out.
// tier: system (needs quail start as root: the processes are root's children)
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { Wire } from '../../test/support/hostile-wire.js';
import { freePort, holdersOf, quail, startProcess, type QuailProcess } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const asRoot = process.getuid?.() === 0;
const skip = !asRoot && 'needs root';

let root = '';
let proc: QuailProcess | undefined;
/** smtp: limits, no stress mode; stressed: stress mode after 2 s; submission: AUTH. */
const port = { smtp: 0, stressed: 0, submission: 0, delayed: 0 };
const open: Wire[] = [];

function smtpdPids(): number[] {
  const st = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
    smtpd?: { pid?: number; pids?: number[] };
  };
  return st.smtpd?.pids ?? (st.smtpd?.pid !== undefined ? [st.smtpd.pid] : []);
}

/**
 * A greeted session from `ip`, kept open until quitAll(). The sessions of the test before are counted out when their
 * process's next log batch reaches root (20 ms at most, longer on a loaded machine): a 421 meanwhile is tried again.
 */
async function session(p: number, ip = '127.0.0.1'): Promise<Wire> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const w = await Wire.connect(p, { localAddress: ip });
    const reply = await w.reply();
    if (reply.startsWith('220 ')) {
      open.push(w);
      return w;
    }
    w.destroy();
    assert.ok(reply.startsWith('421 ') && Date.now() < deadline, `greeting for ${ip}: ${reply}\n${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Two sessions served by different processes. Both wait on the same listening socket, and the kernel wakes both for a
 * connection: the first to accept it serves it, so the next connections are tried until one lands in the other.
 */
async function inBoth(p: number): Promise<[Wire, Wire]> {
  const first = await session(p);
  const by = await servedBy(p, first);
  for (let i = 0; i < 100; i++) {
    const w = await session(p);
    if ((await servedBy(p, w)) !== by) return [first, w];
    w.send('QUIT\r\n');
  }
  assert.fail(`no session went to the second process\n${log().slice(-2000)}`);
}

/** The SMTP process serving `w` (the one that accepted it: root never holds it). */
async function servedBy(p: number, w: Wire): Promise<number> {
  let holders: number[] = [];
  await waitFor(
    () => (holders = holdersOf(p, w.localPort)).length === 1,
    10_000,
    () => `holders of :${w.localPort}: ${holders.join(',')}`,
  );
  return holders[0] ?? 0;
}

async function quitAll(): Promise<void> {
  for (const w of open.splice(0)) {
    w.send('QUIT\r\n');
    await w.closes(5000);
    w.destroy();
  }
}

const log = (): string => proc?.log() ?? '';

before(async () => {
  if (!asRoot) return;
  root = mkdtempSync(join(tmpdir(), 'quail-smtpdprocs-'));
  chmodSync(root, 0o755); // the account must reach the mail root
  quail(['init', '--root', root, '--me', 'mx.procs.test']);
  quail(['domain', 'add', 'procs.test', '--root', root]);
  quail(['user', 'add', 'box@procs.test', '--password', 's3cret', '--root', root]);
  writeFileSync(join(root, 'control', 'smtpdprocesses'), '2\n');
  // clear-text AUTH for the loopback clients (no TLS in this test)
  writeFileSync(join(root, 'control', 'tcp.smtp'), '127.:allow,QUAIL_CLEARAUTH="1"\n');
  port.smtp = await freePort();
  port.stressed = await freePort();
  port.submission = await freePort();
  port.delayed = await freePort();
  writeFileSync(
    join(root, 'control', 'listeners'),
    [
      `127.0.0.1:${port.smtp} smtp maxconn=4 maxperip=3 stresstimeout=0`,
      `127.0.0.1:${port.stressed} smtp maxconn=4 maxperip=10 stresstimeout=2`,
      `127.0.0.1:${port.submission} submission`,
      `127.0.0.1:${port.delayed} smtp maxperip=2 greetdelay=1`,
      '',
    ].join('\n'),
  );
  proc = await startProcess(root, 60_000, {}, false);
});

afterEach(quitAll);

after(async () => {
  await quitAll();
  proc?.killGroup();
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

void test('two SMTP processes serve, both accepting on the port', { skip }, async () => {
  const pids = smtpdPids();
  assert.equal(
    pids.length,
    2,
    `quail.json names two SMTP processes: ${readFileSync(join(root, 'run', 'quail.json'), 'utf8')}`,
  );
  const [a, b] = await inBoth(port.smtp);
  const by = [await servedBy(port.smtp, a), await servedBy(port.smtp, b)];
  assert.deepEqual([...by].sort(), [...pids].sort(), 'the two sessions are in different processes');
  const status = quail(['status', '--root', root]);
  assert.match(status, new RegExp(`smtp processes: pids ${pids.join(', ')} as`), status);
});

void test(
  'maxperip and maxconn hold across the processes, and a session that ends is counted out',
  { skip },
  async () => {
    // three from one address, in both processes: the fourth is refused by root, whichever process accepted it
    await inBoth(port.smtp);
    await session(port.smtp);
    const fourth = await Wire.connect(port.smtp);
    assert.match(await fourth.reply(), /^421 too many connections from your address, try again later \(#4\.7\.0\)/);
    fourth.destroy();
    // another address takes the last of maxconn=4; a fifth client is refused whatever its address
    await session(port.smtp, '127.0.0.2');
    const fifth = await Wire.connect(port.smtp, { localAddress: '127.0.0.3' });
    assert.match(await fifth.reply(), /^421 too many connections, try again later \(#4\.7\.0\)/);
    fifth.destroy();
    // root logs the refusals (its log is written in 20 ms windows)
    await waitFor(
      () => /smtp\.refused .*why=maxperip/.test(log()) && /smtp\.refused .*why=maxconn/.test(log()),
      10_000,
      log,
    );
    // one session ends (its process tells root with its next log batch): the address may connect again
    const first = open.shift();
    first?.send('QUIT\r\n');
    assert.equal(await first?.code(), 221);
    await waitFor(
      async () => {
        const w = await Wire.connect(port.smtp);
        const ok = (await w.code()) === 220;
        if (ok) open.push(w);
        else w.destroy();
        return ok;
      },
      10_000,
      () => `a slot freed by QUIT\n${log().slice(-2000)}`,
    );
  },
);

void test('stress mode counts the sessions of both processes and caps the waits in both', { skip }, async () => {
  // maxconn=4: three sessions are three quarters, however root spreads them
  const idle = [...(await inBoth(port.stressed)), await session(port.stressed)];
  await waitFor(() => /smtp\.stress .*on=true/.test(log()), 10_000, log);
  // stresstimeout=2: each idle client is dropped within seconds, not after control/timeoutsmtpd's 1200 s
  for (const w of idle) assert.ok(await w.closes(15_000), 'an idle session under stress is ended');
  await waitFor(() => /smtp\.stress .*on=false/.test(log()), 15_000, log);
  open.splice(0);
});

void test('an AUTH failure in one process slows the next guess in the other', { skip }, async () => {
  const plain = (pw: string): string => Buffer.from(`\0box@procs.test\0${pw}`).toString('base64');
  const [one, two] = await inBoth(port.submission);
  for (const w of [one, two]) {
    w.send('EHLO client.test\r\n');
    assert.equal(await w.code(), 250);
  }
  one.send(`AUTH PLAIN ${plain('wrong')}\r\n`);
  assert.equal(await one.code(), 535);
  // the first failure of this address and login: the next attempt waits (1 s), whichever process gets it. The news
  // travels through root (two channel hops), so a guess sent within those milliseconds could still pass unslowed;
  // the wait here is generous for a loaded machine, and the delay it checks does not shrink with time.
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  two.send(`AUTH PLAIN ${plain('wrong again')}\r\n`);
  assert.equal(await two.code(), 535);
  assert.ok(Date.now() - t0 >= 900, `the second guess waited ${Date.now() - t0} ms: the failure was not shared`);
});

void test(
  'one SMTP process killed: the other goes on serving, its sessions are counted out, a new one starts',
  { skip },
  async () => {
    const pids = smtpdPids();
    const sessions = [...(await inBoth(port.smtp)), await session(port.smtp)];
    const by = await Promise.all(sessions.map((w) => servedBy(port.smtp, w)));
    const victim = by[0] ?? 0;
    const survivor = sessions[by.findIndex((p) => p !== victim)];
    assert.ok(survivor, `sessions in both processes: ${by.join(',')}`);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => /smtpd\.crashed/.test(log()), 10_000, log);
    // the session in the other process is untouched
    survivor.send('MAIL FROM:<a@b.test>\r\n');
    assert.equal(await survivor.code(), 250);
    // the dead process's sessions no longer count against maxperip=3: as many new ones as it held are admitted
    const held = by.filter((p) => p === victim).length;
    for (let i = 0; i < held; i++) await session(port.smtp);
    await waitFor(
      () => smtpdPids().length === 2 && !smtpdPids().includes(victim) && pids.some((p) => smtpdPids().includes(p)),
      30_000,
      () => `a new process replaces the killed one: ${smtpdPids().join(',')}\n${log().slice(-2000)}`,
    );
  },
);

void test(
  'clients gone before their greeting (during greetdelay) are counted out: maxperip still admits',
  { skip },
  async () => {
    // FIN or RST: each session ends without a byte written; the child says `adopted` and then `closed` (in that
    // order, or root would count the connection for good and the address would get 421 from then on)
    for (let i = 0; i < 6; i++) {
      const w = await Wire.connect(port.delayed);
      await new Promise((r) => setTimeout(r, 100)); // the child has it, in the greeting delay
      if (i % 2 === 0) {
        w.end();
        assert.ok(await w.closes(10_000), 'the server ends a session whose client left before the greeting');
      } else w.reset();
    }
    await new Promise((r) => setTimeout(r, 500)); // the resets reach the child
    await session(port.delayed);
    await session(port.delayed);
  },
);

void test(
  'a burst of clients gone while their process asks root (reset or FIN at once, garbage sent): all counted out, none crashes a process',
  { skip },
  async () => {
    const pids = smtpdPids();
    const from = log().length;
    // maxperip=3 on this listener: 60 connections that leave before any answer, from one address, in flight together
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const w = await Wire.connect(port.smtp);
        if (i % 3 === 0) w.send('\x00\xff garbage before the greeting\r\n');
        if (i % 2 === 0) w.reset();
        else w.end();
        w.destroy();
      }),
    );
    // every one of them is counted out by root (the processes say `closed` in their next log batches): three
    // sessions from the same address are admitted again, and both processes are the ones that were there
    for (let i = 0; i < 3; i++) await session(port.smtp);
    assert.deepEqual([...smtpdPids()].sort(), [...pids].sort(), 'no SMTP process died');
    assert.doesNotMatch(log().slice(from), /smtpd\.crashed|smtp\.error/, 'nothing crashed or failed');
  },
);
