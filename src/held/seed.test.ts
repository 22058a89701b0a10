// Seeds 001/004's dial-up layout, unchanged: quail start holds the mail, a cron-style loop pushes it with setlock.
// tier: system (needs quail start, swaks, setlock from daemontools)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchmail as runFetchmail, type ChildResult } from '../../test/support/fetchmail.js';
import { testSmtp } from '../../test/support/testsmtp.js';
import {
  freePort,
  listenerPort,
  MAIN,
  quail,
  setupRoot,
  sleep,
  startProcess,
  swaks,
  waitFor,
} from '../../test/support/start.js';

const DOMAIN = 'some.example.com';

/** The seed's master script: per directory of serialmail/, setlock -nx RELAYHOST, nothing when new/ is empty. */
const MASTER = `
for d in "$SERIAL"/*/; do
  (
    cd "$d" || exit 111
    exec setlock -nx RELAYHOST sh -c '
      [ -n "$(ls Maildir/new)" ] || exit 0
      exec "$NODE" "$QUAIL" maildirsmtp --root "$ROOT" ./Maildir/ "$(basename "$PWD")-" "$(cat RELAYHOST)" isp.test'
  ) &
done
wait
`;

function master(root: string): { status: number | null; out: string } {
  const r = spawnSync('sh', ['-c', MASTER], {
    encoding: 'utf8',
    env: { ...process.env, SERIAL: join(root, 'serialmail'), ROOT: root, NODE: process.execPath, QUAIL: MAIN },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** quail init plus the seed's files for some.example.com, written by hand as the seed's operator does. */
function seedRoot(relayhost: string): { root: string; maildir: string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-seed-'));
  const owner = setupRoot(root, 'isp.test', []);
  const home = join(root, 'serialmail', DOMAIN);
  writeFileSync(join(root, 'control', 'virtualdomains'), `${DOMAIN}:${DOMAIN}\n`, { flag: 'a' });
  writeFileSync(join(root, 'control', 'rcpthosts'), `${DOMAIN}\n`, { flag: 'a' });
  writeFileSync(join(root, 'users', 'assign'), `+${DOMAIN}-:${owner.name}:${owner.uid}:${owner.gid}:${home}:-::\n.\n`);
  quail(['newu', '--root', root]);
  mkdirSync(home, { recursive: true, mode: 0o755 });
  writeFileSync(join(home, 'RELAYHOST'), `${relayhost}\n`);
  quail(['maildirmake', join(home, 'Maildir')]);
  writeFileSync(join(home, '.qmail-default'), './Maildir/\n', { mode: 0o644 });
  spawnSync('chown', ['-R', `${owner.uid}:${owner.gid}`, join(root, 'serialmail')]);
  // RELAYHOST stays root's, mode 644, as the seed's `echo ... > RELAYHOST` as root leaves it: the unprivileged
  // pusher must still be able to lock it.
  spawnSync('chown', ['0:0', join(home, 'RELAYHOST')]);
  return { root, maildir: join(home, 'Maildir') };
}

void test('seed layout: held by quail start, pushed by maildirsmtp under setlock; offline, then online, once', async () => {
  const port = await freePort();
  const { root, maildir } = seedRoot(`127.0.0.1:${port}`);
  const q = await startProcess(root);
  try {
    const smtp = listenerPort(root, 'smtp');
    for (const who of ['joe', 'ann', 'bob']) {
      const r = swaks(smtp, ['--to', `${who}@${DOMAIN}`, '--header', `Subject: for ${who}`]);
      assert.equal(r.status, 0, r.out);
    }
    await waitFor(() => readdirSync(join(maildir, 'new')).length === 3, 20_000, q.log);
    // The customer is offline: the loop leaves everything (exit 111 from maildirsmtp, nothing bounced).
    const off = master(root);
    assert.match(off.out, /no connection to 127\.0\.0\.1/);
    assert.equal(readdirSync(join(maildir, 'new')).length, 3);
    // Online: two loops at once (cron overlapping a slow run): setlock lets one push, each message arrives once.
    const customer = await testSmtp('127.0.0.1', { port, ehlo: ['PIPELINING'] });
    const [a, b] = await Promise.all([runMaster(root), runMaster(root)]);
    assert.ok(
      [a, b].some((x) => x.includes(': sent:')),
      a + b,
    );
    assert.deepEqual(readdirSync(join(maildir, 'new')), []);
    const rcpts = customer.messages.flatMap((m) => m.recipients).sort();
    assert.deepEqual(rcpts, [`ann@${DOMAIN}`, `bob@${DOMAIN}`, `joe@${DOMAIN}`]);
    assert.ok(
      customer.messages.every((m) => m.raw.startsWith(`Delivered-To: ${DOMAIN}-`)),
      customer.messages[0]?.raw,
    );
    // Nothing in new/: the loop does not even connect.
    const before = customer.connections.length;
    master(root);
    assert.equal(customer.connections.length, before);
    await customer.close();
  } finally {
    q.killGroup();
    await q.exited;
  }
});

function runQuail(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MAIN, ...args]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

function runMaster(root: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('sh', ['-c', MASTER], {
      env: { ...process.env, SERIAL: join(root, 'serialmail'), ROOT: root, NODE: process.execPath, QUAIL: MAIN },
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out));
  });
}

/** An SMTP server that takes the first message and then never answers the final dot of the second. */
async function stallingServer(): Promise<{ port: number; seen: () => number; close: () => void }> {
  let dots = 0;
  const socks: Socket[] = [];
  const server = createServer((s) => {
    socks.push(s);
    s.on('error', () => undefined);
    s.write('220 stall ESMTP\r\n');
    let buf = '';
    let inData = false;
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buf = buf.slice(end + 5);
          inData = false;
          dots++;
          if (dots === 1) s.write('250 ok first\r\n');
          continue; // the second final dot: no answer, ever
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const verb = buf.slice(0, 4).toUpperCase();
        buf = buf.slice(nl + 2);
        if (verb === 'DATA') {
          inData = true;
          s.write('354 go\r\n');
        } else s.write(verb === 'QUIT' ? '221 bye\r\n' : '250 ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen: () => dots,
    close: () => {
      for (const s of socks) s.destroy();
      server.close();
    },
  };
}

void test('kill -9 in the middle of a push loses nothing: the message in flight stays and is sent again', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-held-kill-'));
  quail(['init', '--root', root, '--me', 'isp.test']); // maildirsmtp bounces into this root's queue
  const maildir = join(root, 'Maildir');
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(maildir, sub), { recursive: true });
  for (let i = 1; i <= 3; i++)
    writeFileSync(
      join(maildir, 'new', `${1_900_000_000 + i}.M${i}P1.isp.test`),
      `Return-Path: <a@far.test>\nDelivered-To: ${DOMAIN}-u${i}@${DOMAIN}\nSubject: ${i}\n\nbody ${i}\n`,
    );
  const stall = await stallingServer();
  const child = spawn(process.execPath, [
    MAIN,
    'maildirsmtp',
    '--root',
    root,
    maildir,
    `${DOMAIN}-`,
    `127.0.0.1:${stall.port}`,
  ]);
  await waitFor(
    () => stall.seen() === 2,
    20_000,
    () => 'the push never sent the second message',
  );
  await sleep(100);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  stall.close();
  assert.deepEqual(readdirSync(join(maildir, 'new')).sort(), [
    `${1_900_000_002}.M2P1.isp.test`,
    `${1_900_000_003}.M3P1.isp.test`,
  ]);
  const customer = await testSmtp('127.0.0.1');
  // Asynchronously: the customer's server runs in this process (spawnSync would block it).
  const again = await runQuail(['maildirsmtp', '--root', root, maildir, `${DOMAIN}-`, `127.0.0.1:${customer.port}`]);
  assert.equal(again.code, 0, again.out);
  assert.deepEqual(
    customer.messages.flatMap((m) => m.recipients),
    [`u2@${DOMAIN}`, `u3@${DOMAIN}`],
  );
  assert.deepEqual(readdirSync(join(maildir, 'new')), []);
  await customer.close();
});

/** fetchmail as the customer (asynchronously: the customer's SMTP server runs in this process). */
function fetchmail(args: readonly string[]): Promise<ChildResult> {
  return runFetchmail(['-v', '--nosyslog', '-f', '/dev/null', '--nodetach', ...args]);
}

/** One SMTP command from `source` with python3's smtplib (a real client), after EHLO; the reply line. */
function smtpCommand(port: number, source: string, verb: string, arg: string): Promise<string> {
  const py = `import smtplib,sys
s=smtplib.SMTP('127.0.0.1',${port},source_address=('${source}',0))
s.ehlo('customer.test')
c,m=s.docmd('${verb}','${arg}')
print(c,m.decode())
s.quit()`;
  return new Promise((resolve) => {
    const c = spawn('python3', ['-c', py]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out.trim()));
  });
}

void test('ETRN (RFC 1985) with fetchmail --protocol ETRN: the held mail arrives once; strangers and others get 459', async () => {
  const customer = await testSmtp('127.0.0.1', { ehlo: ['PIPELINING'] });
  const { root, maildir } = seedRoot(`127.0.0.1:${customer.port}`);
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n'); // only ETRN pushes in this test
  // two SMTP processes: the ETRN rate limit must hold whichever of them is asked (they tell each other through root)
  writeFileSync(join(root, 'control', 'smtpdprocesses'), '2\n');
  const q = await startProcess(root);
  try {
    const smtp = listenerPort(root, 'smtp');
    for (const who of ['joe', 'ann']) assert.equal(swaks(smtp, ['--to', `${who}@${DOMAIN}`]).status, 0);
    await waitFor(() => readdirSync(join(maildir, 'new')).length === 2, 20_000, q.log);
    assert.match(await smtpCommand(smtp, '127.0.0.2', 'ETRN', DOMAIN), /^459 .*127\.0\.0\.2 is not its mail host/);
    assert.match(await smtpCommand(smtp, '127.0.0.1', 'ETRN', 'other.test'), /^459 .*not held here/);
    assert.match(await smtpCommand(smtp, '127.0.0.1', 'ETRN', '#queue'), /^459 /);
    assert.match(await smtpCommand(smtp, '127.0.0.1', 'ETRN', 'bad domain'), /^501 /);
    assert.equal(customer.messages.length, 0);
    assert.match(
      quail(['held', 'list', '--root', root]),
      new RegExp(`^${DOMAIN} host 127\\.0\\.0\\.1:${customer.port} waiting 2 oldest \\S+ lock free`, 'm'),
    );
    const f = await fetchmail(['--protocol', 'ETRN', '--fetchdomains', DOMAIN, '-P', String(smtp), '127.0.0.1']);
    assert.match(f.out, /253 .*2 pending messages for node some\.example\.com started/, f.out);
    await waitFor(() => customer.messages.length === 2, 20_000, q.log);
    await waitFor(() => readdirSync(join(maildir, 'new')).length === 0, 20_000, q.log);
    // Asked again at once, three times (so both SMTP processes are asked): the rate limit answers 458; nothing is
    // sent twice.
    for (let i = 0; i < 3; i++) assert.match(await smtpCommand(smtp, '127.0.0.1', 'ETRN', DOMAIN), /^458 .*try again/);
    await sleep(500);
    assert.deepEqual(customer.messages.flatMap((m) => m.recipients).sort(), [`ann@${DOMAIN}`, `joe@${DOMAIN}`]);
    assert.match(q.log(), /held\.push domain=some\.example\.com result=done sent=2/);
    assert.match(quail(['held', 'list', '--root', root]), / waiting 0 lock free/);
  } finally {
    q.killGroup();
    await q.exited;
    await customer.close();
  }
});

void test('without cron: quail held flush pushes; afterwards new mail for the reachable domain goes within seconds', async () => {
  const port = await freePort();
  const { root, maildir } = seedRoot(`127.0.0.1:${port}`);
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n'); // no timed push in this test
  const q = await startProcess(root);
  let customer: Awaited<ReturnType<typeof testSmtp>> | undefined;
  try {
    const smtp = listenerPort(root, 'smtp');
    assert.equal(swaks(smtp, ['--to', `joe@${DOMAIN}`]).status, 0);
    await waitFor(() => readdirSync(join(maildir, 'new')).length === 1, 20_000, q.log);
    // Offline: the push stops, nothing is bounced or removed.
    assert.match(quail(['held', 'flush', DOMAIN, '--root', root]), /push requested for some\.example\.com/);
    await waitFor(() => /held\.push domain=some\.example\.com result=stopped/.test(q.log()), 20_000, q.log);
    assert.equal(readdirSync(join(maildir, 'new')).length, 1);
    // Online: flushed, it arrives once.
    customer = await testSmtp('127.0.0.1', { port });
    assert.match(quail(['held', 'flush', '--root', root]), /push requested/);
    await waitFor(() => customer?.messages.length === 1, 20_000, q.log);
    // The domain was reachable just now: new mail is pushed without being asked.
    assert.equal(swaks(smtp, ['--to', `ann@${DOMAIN}`]).status, 0);
    await waitFor(() => customer?.messages.length === 2, 20_000, q.log);
    await waitFor(() => readdirSync(join(maildir, 'new')).length === 0, 20_000, q.log);
    assert.deepEqual(
      customer.messages.flatMap((m) => m.recipients),
      [`joe@${DOMAIN}`, `ann@${DOMAIN}`],
    );
    assert.throws(() => quail(['held', 'flush', 'other.test', '--root', root]), /other\.test is not held here/);
  } finally {
    q.killGroup();
    await q.exited;
    await customer?.close();
  }
});
