// HeldPusher: held domains found from the seeds' files, one push per domain across processes (RELAYHOST's flock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { newu } from '../users/index.js';
import { testSmtp } from '../../test/support/testsmtp.js';
import { waitFor } from '../../test/support/start.js';
import { findHeld, HeldPusher, listHeld, lockDescription } from './index.js';

const DOMAIN = 'some.example.com';

function world(relayhost: string): { root: string; maildir: string; relay: string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-pusher-'));
  mkdirSync(join(root, 'control'));
  mkdirSync(join(root, 'users'));
  writeFileSync(join(root, 'control', 'me'), 'isp.test\n');
  writeFileSync(join(root, 'control', 'virtualdomains'), `${DOMAIN}:${DOMAIN}\nplain.test:plain.test\n`);
  const home = join(root, 'serialmail', DOMAIN);
  const uid = 1234; // any but 0: qmail-lspawn's lookup refuses root (C.3.5); nothing here runs as it
  const gid = 1234;
  writeFileSync(
    join(root, 'users', 'assign'),
    `+${DOMAIN}-:u:${uid}:${gid}:${home}:-::\n+plain.test-:u:${uid}:${gid}:${join(root, 'plain')}:-::\n.\n`,
  );
  newu(root);
  const maildir = join(home, 'Maildir');
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(maildir, sub), { recursive: true });
  mkdirSync(join(root, 'plain', 'Maildir', 'new'), { recursive: true }); // a Maildir but no RELAYHOST: not held
  const relay = join(home, 'RELAYHOST');
  writeFileSync(relay, `${relayhost}\n`);
  writeFileSync(
    join(maildir, 'new', '1900000000.M1P1.isp.test'),
    `Return-Path: <a@far.test>\nDelivered-To: ${DOMAIN}-joe@${DOMAIN}\nSubject: x\n\nbody\n`,
  );
  return { root, maildir, relay };
}

void test('held domains are the virtualdomains entries whose +id- home has RELAYHOST and a Maildir', () => {
  const { root } = world('127.0.0.1:2525');
  const control = new Control(root);
  const h = findHeld(root, control, 'Some.Example.COM');
  assert.equal(h?.prefix, `${DOMAIN}-`);
  assert.equal(h?.relayhost, '127.0.0.1:2525');
  assert.equal(findHeld(root, control, 'plain.test'), undefined);
  assert.equal(findHeld(root, control, 'nowhere.test'), undefined);
  assert.deepEqual(
    listHeld(root, control).map((x) => x.domain),
    [DOMAIN],
  );
});

void test('a push while another process holds RELAYHOST (setlock/flock) is skipped; afterwards it runs', async () => {
  const customer = await testSmtp('127.0.0.1');
  const { root, maildir, relay } = world(`127.0.0.1:${customer.port}`);
  const events: string[] = [];
  const pusher = new HeldPusher({
    root,
    control: () => new Control(root),
    inject: () => Promise.reject(new Error('no bounce expected')),
    watch: () => () => undefined,
    log: (e, f) => events.push(`${e} ${JSON.stringify(f)}`),
  });
  // The seed's script holds the lock (flock -x, as setlock -x) until we let it go.
  const holder = spawn('flock', ['-x', relay, 'sh', '-c', 'echo locked; read x'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let said = '';
  holder.stdout.on('data', (d: Buffer) => (said += d.toString()));
  await waitFor(
    () => said.includes('locked'),
    10_000,
    () => 'flock never took the lock',
  );
  assert.deepEqual(await pusher.push(DOMAIN), { kind: 'busy' });
  // quail held list and quail status say who holds it: flock(2) does not, the processes with RELAYHOST open do.
  assert.match(await lockDescription(relay), new RegExp(`^held by .*\\b${String(holder.pid)} \\(flock\\)`));
  assert.equal(customer.messages.length, 0);
  assert.equal(readdirSync(join(maildir, 'new')).length, 1);
  holder.stdin.end('\n');
  await new Promise((r) => holder.on('close', r));
  assert.equal(await lockDescription(relay), 'free');
  const done = await pusher.push(DOMAIN);
  assert.equal(done.kind, 'pushed');
  assert.equal(customer.messages.length, 1);
  assert.equal(readdirSync(join(maildir, 'new')).length, 0);
  assert.equal(pusher.lastPush(DOMAIN)?.reached, true);
  assert.deepEqual(await pusher.push('plain.test'), { kind: 'not-held' });
  assert.ok(
    events.some((e) => e.startsWith('held.push') && e.includes('"result":"busy"')),
    events.join('\n'),
  );
  await pusher.stop();
  await customer.close();
});

void test('a customer whose server stalls does not hold back the timed pushes of other held domains', async () => {
  const customer = await testSmtp('127.0.0.1');
  const stalled: Socket[] = []; // accepts, never greets: the push waits control/timeoutremote (1200 s)
  const staller = createServer((s) => {
    stalled.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => staller.listen(0, '127.0.0.1', r));
  const { root, maildir } = world(`127.0.0.1:${customer.port}`);
  const stallHome = join(root, 'serialmail', 'stall.test');
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(stallHome, 'Maildir', sub), { recursive: true });
  writeFileSync(join(stallHome, 'RELAYHOST'), `127.0.0.1:${(staller.address() as AddressInfo).port}\n`);
  writeFileSync(
    join(stallHome, 'Maildir', 'new', '1900000000.M2P2.isp.test'),
    'Return-Path: <a@far.test>\nDelivered-To: stall.test-ann@stall.test\nSubject: y\n\nbody\n',
  );
  appendFileSync(join(root, 'control', 'virtualdomains'), 'stall.test:stall.test\n');
  writeFileSync(
    join(root, 'users', 'assign'),
    `+${DOMAIN}-:u:1234:1234:${join(root, 'serialmail', DOMAIN)}:-::\n+stall.test-:u:1234:1234:${stallHome}:-::\n.\n`,
  );
  newu(root);
  const pusher = new HeldPusher({
    root,
    control: () => new Control(root),
    inject: () => Promise.reject(new Error('no bounce expected')),
    watch: () => () => undefined,
    log: () => undefined,
    intervalSeconds: 1,
  });
  try {
    pusher.start();
    await waitFor(
      () => customer.messages.length === 1 && stalled.length === 1,
      20_000,
      () => `first round: ${customer.messages.length} sent, ${stalled.length} stalled connection(s)`,
    );
    // New mail for the reachable customer while the other push still hangs: the next timed round takes it.
    writeFileSync(
      join(maildir, 'new', '1900000001.M3P3.isp.test'),
      `Return-Path: <a@far.test>\nDelivered-To: ${DOMAIN}-joe@${DOMAIN}\nSubject: z\n\nbody\n`,
    );
    await waitFor(
      () => customer.messages.length === 2,
      20_000,
      () => 'the second message waited for the stalled push of stall.test',
    );
    assert.equal(stalled.length, 1, 'the stalled push is not started twice');
  } finally {
    for (const s of stalled) s.destroy();
    await pusher.stop();
    staller.close();
    await customer.close();
  }
});
