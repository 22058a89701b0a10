// Seed 000's Megacorp on one machine: three `quail start` (ny 127.0.0.2, atl 127.0.0.3, den 127.0.0.4) sharing one
// throw-away PostgreSQL directory; real mail by swaks; connections counted in the receiving servers' logs.
// tier: system (needs PostgreSQL, swaks)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { startCluster, type Cluster } from '../../test/support/pgcluster.js';
import { MAIN, quail, waitFor, type QuailProcess } from '../../test/support/start.js';

const DOMAIN = 'megacorp.example';
const OFFICES = [
  { name: 'ny', ip: '127.0.0.2', users: ['nick', 'nancy', 'postmaster'] },
  { name: 'atl', ip: '127.0.0.3', users: ['alex', 'alice'] },
  { name: 'den', ip: '127.0.0.4', users: ['dave', 'diane'] },
] as const;
type Name = (typeof OFFICES)[number]['name'];

const base = mkdtempSync(join(tmpdir(), 'quail-offices-'));
chmodSync(base, 0o755);
let cluster: Cluster | null = null;
let reason = '';
const roots = {} as Record<Name, string>;
const ports = {} as Record<Name, number>;
const procs = {} as Partial<Record<Name, QuailProcess>>;

/** `quail start` listening on the office's own loopback address (port 0 the first time, then the same port). */
async function startOffice(name: Name): Promise<QuailProcess> {
  const o = OFFICES.find((x) => x.name === name);
  if (!o) throw new Error(name);
  const child = spawn(
    process.execPath,
    [MAIN, 'start', '--root', roots[name], '--smtp', `${o.ip}:${ports[name] ?? 0}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let text = '';
  child.stdout.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const p: QuailProcess = {
    child,
    log: () => text,
    exited,
    killGroup: () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    () => {
      if (gone) throw new Error(`quail start (${name}) exited:\n${text}`);
      return text.includes('quail.started');
    },
    60_000,
    () => `${name} to start:\n${text}`,
  );
  const st = JSON.parse(readFileSync(join(roots[name], 'run', 'quail.json'), 'utf8')) as {
    listeners: Array<{ port: number; kind: string }>;
  };
  ports[name] = st.listeners.find((l) => l.kind === 'smtp')?.port ?? 0;
  procs[name] = p;
  return p;
}

async function stopOffice(name: Name): Promise<void> {
  const p = procs[name];
  if (!p) return;
  p.child.kill('SIGTERM');
  await p.exited;
  delete procs[name];
}

/** swaks to an office: its exit status and transcript. */
function send(name: Name, to: string, subject: string): { status: number | null; out: string } {
  const o = OFFICES.find((x) => x.name === name);
  const r = spawnSync(
    'swaks',
    [
      '--server',
      `${o?.ip}:${ports[name]}`,
      '--from',
      'boss@client.test',
      '--to',
      to,
      '--h-Subject',
      subject,
      '--timeout',
      '20',
    ],
    { encoding: 'latin1' },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function maildir(name: Name, user: string): string[] {
  const dir = join(roots[name], 'domains', DOMAIN, user, 'Maildir', 'new');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1'));
}

const has = (name: Name, user: string, subject: string): boolean =>
  maildir(name, user).some((m) => m.includes(`Subject: ${subject}`));

/** Connections each server accepted from the address of office `from` (its smtp.connect events). */
function connectionsFrom(at: Name, from: Name): number {
  const ip = OFFICES.find((x) => x.name === from)?.ip ?? '';
  return (procs[at]?.log() ?? '').split('\n').filter((l) => l.includes('smtp.connect') && l.includes(`ip=${ip} `))
    .length;
}

const logs = (): string => OFFICES.map((o) => `--- ${o.name}\n${procs[o.name]?.log() ?? '(stopped)'}`).join('\n');

before(async () => {
  try {
    cluster = await startCluster();
  } catch (err) {
    reason = errText(err);
    return;
  }
  const url = await cluster.newDatabase();
  for (const o of OFFICES) {
    const root = mkdtempSync(join(base, `${o.name}-`));
    chmodSync(root, 0o755);
    roots[o.name] = root;
    quail(['init', '--root', root, '--me', `mail.${o.name}.${DOMAIN}`]);
    quail(['directory', 'use', url, '--root', root]);
    writeFileSync(join(root, 'control', 'office'), `${o.name}\n`);
    // Inter-office mail leaves from the office's own address: that is how the receiver knows it came from an office.
    writeFileSync(join(root, 'control', 'outgoingip'), `${o.ip}\n`);
    writeFileSync(join(root, 'control', 'officerefresh'), '5\n');
    // SMTP only, on the office's own address (no submission or POP3 on 127.0.0.1's default ports).
    writeFileSync(join(root, 'control', 'listeners'), `${o.ip}:0 smtp\n`);
  }
  // The domain is added at ny only: atl and den get their qmail files from the directory by themselves.
  // No postmaster alias to a server's own postmaster: the one postmaster is a mailbox at ny.
  quail(['domain', 'add', DOMAIN, '--no-postmaster', '--root', roots.ny]);
  for (const o of OFFICES) await startOffice(o.name);
  for (const o of OFFICES) quail(['office', 'add', o.name, `${o.ip}:${ports[o.name]}`, '--root', roots.ny]);
  // Mailboxes added on any server (here: each at its own office's server).
  for (const o of OFFICES)
    for (const u of o.users)
      quail(['user', 'add', `${u}@${DOMAIN}`, '--office', o.name, '--password', 'pw', '--root', roots[o.name]]);
  for (const o of OFFICES)
    await waitFor(
      () => {
        const t = join(roots[o.name], 'run', 'offices.json');
        const rc = readFileSync(join(roots[o.name], 'control', 'rcpthosts'), 'utf8');
        return existsSync(t) && readFileSync(t, 'utf8').includes('diane@') && rc.includes(DOMAIN);
      },
      30_000,
      () => `${o.name} to follow the directory:\n${logs()}`,
    );
});

after(async () => {
  for (const o of OFFICES) {
    procs[o.name]?.child.kill('SIGTERM');
    await procs[o.name]?.exited;
  }
  cluster?.stop();
  rmSync(base, { recursive: true, force: true });
});

function need(): void {
  if (!cluster) assert.fail(`PostgreSQL is required for the offices test: ${reason}`);
}

void test('offices: every server follows the shared directory by itself (domain and mailboxes added elsewhere)', () => {
  need();
  for (const o of OFFICES) {
    const vd = readFileSync(join(roots[o.name], 'control', 'virtualdomains'), 'utf8');
    assert.match(vd, new RegExp(`^${DOMAIN}:${DOMAIN}$`, 'm'), `${o.name}: virtualdomains`);
    assert.match(
      quail(['status', '--root', roots[o.name]]),
      new RegExp(`office: ${o.name}; mailbox→office table: 7 mailboxes in 3 offices, read \\d+ s ago`),
    );
  }
});

void test('offices: nancy → nick stays in New York; nancy → alex is one connection ny → atl', async () => {
  need();
  const before = { atl: connectionsFrom('atl', 'ny'), den: connectionsFrom('den', 'ny') };
  assert.equal(send('ny', `nick@${DOMAIN}`, 'ny-local').status, 0);
  await waitFor(
    () => has('ny', 'nick', 'ny-local'),
    30_000,
    () => `nick's mail at ny:\n${logs()}`,
  );
  assert.equal(connectionsFrom('atl', 'ny'), before.atl, 'no connection to atl');
  assert.equal(connectionsFrom('den', 'ny'), before.den, 'no connection to den');
  assert.equal(send('ny', `alex@${DOMAIN}`, 'ny-to-atl').status, 0);
  await waitFor(
    () => has('atl', 'alex', 'ny-to-atl'),
    30_000,
    () => `alex's mail at atl:\n${logs()}`,
  );
  assert.equal(connectionsFrom('atl', 'ny'), before.atl + 1, 'exactly one connection ny → atl');
  assert.equal(connectionsFrom('den', 'ny'), before.den, 'none to den');
  assert.deepEqual(maildir('ny', 'alex'), [], 'nothing delivered for alex at ny');
  assert.ok(!has('atl', 'nick', 'ny-local'));
});

void test('offices: an unknown address is 550 at every office; postmaster at any office reaches the one at ny', async () => {
  need();
  for (const o of OFFICES) {
    const r = send(o.name, `nobody@${DOMAIN}`, 'unknown');
    assert.notEqual(r.status, 0, `${o.name} refused it`);
    assert.match(r.out, /<\*\* 550/, `${o.name}: 550 at RCPT`);
  }
  for (const o of OFFICES) assert.equal(send(o.name, `postmaster@${DOMAIN}`, `pm-via-${o.name}`).status, 0);
  for (const o of OFFICES)
    await waitFor(
      () => has('ny', 'postmaster', `pm-via-${o.name}`),
      30_000,
      () => `postmaster mail via ${o.name}:\n${logs()}`,
    );
  assert.deepEqual(maildir('atl', 'postmaster'), []);
  assert.deepEqual(maildir('den', 'postmaster'), []);
});

void test('offices: atl stopped → mail for alex waits at ny (queue list says where) and arrives when atl is back', async () => {
  need();
  await stopOffice('atl');
  assert.equal(send('ny', `alex@${DOMAIN}`, 'while-atl-down').status, 0);
  await waitFor(
    () => /office atl \(127\.0\.0\.3:\d+\)/i.test(quail(['queue', 'list', '--root', roots.ny])),
    30_000,
    () => `a deferral naming office atl in ny's queue:\n${quail(['queue', 'list', '--root', roots.ny])}\n${logs()}`,
  );
  const listed = quail(['queue', 'list', '--root', roots.ny]);
  assert.match(listed, /\toffice\talex@megacorp\.example\t/);
  assert.ok(!has('ny', 'alex', 'while-atl-down'));
  await startOffice('atl');
  // The normal retry schedule would wait minutes: `quail queue flush` is qmail's SIGALRM (retry now).
  quail(['queue', 'flush', '--root', roots.ny]);
  await waitFor(
    () => has('atl', 'alex', 'while-atl-down'),
    60_000,
    () => `alex's mail after atl came back:\n${logs()}`,
  );
  assert.doesNotMatch(procs.ny?.log() ?? '', /send\.bounce/);
});

void test('offices: another office sending for a mailbox that is not here gets 451 at RCPT; it is never passed on', () => {
  need();
  // As if ny still thought dave lived at atl: ny's address sends to atl, which must not pass it on to den. It
  // refuses for now (451), so the message stays in the sender's queue and follows dave at its next attempt.
  const r = spawnSync(
    'swaks',
    [
      '--server',
      `127.0.0.3:${ports.atl}`,
      '--local-interface',
      '127.0.0.2',
      '--from',
      'nancy@megacorp.example',
      '--to',
      `dave@${DOMAIN}`,
      '--h-Subject',
      'second-hop',
      '--timeout',
      '20',
    ],
    { encoding: 'latin1' },
  );
  assert.match(r.stdout, /<\*\* 451 4\.3\.0 that mailbox is not at this office/, r.stdout);
  // The same client for a mailbox of atl itself is accepted (the one hop).
  const ok = spawnSync(
    'swaks',
    [
      '--server',
      `127.0.0.3:${ports.atl}`,
      '--local-interface',
      '127.0.0.2',
      '--to',
      `alice@${DOMAIN}`,
      '--timeout',
      '20',
    ],
    { encoding: 'latin1' },
  );
  assert.equal(ok.status, 0, ok.stdout);
  assert.equal(connectionsFrom('den', 'atl'), 0, 'atl never connected to den');
});

void test('offices: quail user move on one server → every office sends the mailbox new mail at its new office', async () => {
  need();
  assert.match(
    quail(['user', 'move', `alice@${DOMAIN}`, '--office', 'den', '--root', roots.ny]),
    /alice@megacorp\.example now lives at office den \(was atl\)/,
  );
  await waitFor(
    () =>
      OFFICES.every((o) =>
        readFileSync(join(roots[o.name], 'run', 'offices.json'), 'utf8').includes('"alice@megacorp.example":"den"'),
      ),
    30_000,
    () => `every office to hear of the move:\n${logs()}`,
  );
  // The mail alice had at atl (the one-hop test's message) was carried to den; atl's log has caught up with that.
  await waitFor(
    () => (procs.atl?.log() ?? '').includes('offices.moved'),
    30_000,
    () => `atl to log the finished move:\n${logs()}`,
  );
  assert.deepEqual(maildir('atl', 'alice'), [], 'nothing left at atl');
  assert.equal(maildir('den', 'alice').length, 1, "alice's old message at den");
  const atlBefore = connectionsFrom('atl', 'ny');
  assert.equal(send('ny', `alice@${DOMAIN}`, 'after-move').status, 0);
  await waitFor(
    () => has('den', 'alice', 'after-move'),
    30_000,
    () => `alice's mail at den:\n${logs()}`,
  );
  assert.ok(!has('atl', 'alice', 'after-move'));
  assert.equal(connectionsFrom('atl', 'ny'), atlBefore, 'nothing went to atl');
  assert.match(
    quail(['office', 'list', '--root', roots.atl]),
    /^den\t127\.0\.0\.4:\d+\ttls-when-offered\t3 mailboxes$/m,
  );
});

/** swaks to an office without blocking the event loop (traffic runs beside the move). */
function sendAsync(name: Name, to: string, id: string): Promise<number | null> {
  const o = OFFICES.find((x) => x.name === name);
  const c = spawn(
    'swaks',
    ['--server', `${o?.ip}:${ports[name]}`, '--from', 'boss@client.test', '--to', to].concat([
      '--h-Message-Id',
      `<${id}>`,
      '--h-Subject',
      id,
      '--timeout',
      '20',
    ]),
    { stdio: 'ignore' },
  );
  return new Promise((r) => c.on('exit', (code) => r(code)));
}

/** Message-ID → how many copies, over new/ and cur/ of a mailbox at an office (and the file names of cur/). */
function messageIds(name: Name, user: string): { ids: Map<string, number>; cur: string[] } {
  const ids = new Map<string, number>();
  const base = join(roots[name], 'domains', DOMAIN, user, 'Maildir');
  const cur = existsSync(join(base, 'cur')) ? readdirSync(join(base, 'cur')) : [];
  for (const sub of ['new', 'cur']) {
    if (!existsSync(join(base, sub))) continue;
    for (const f of readdirSync(join(base, sub))) {
      const id = /^Message-Id:\s*<([^>]+)>/im.exec(readFileSync(join(base, sub, f), 'latin1'))?.[1] ?? `(none: ${f})`;
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
  }
  return { ids, cur };
}

void test('offices: quail user move under traffic carries the Maildir; nothing lost, nothing twice, no bounce', async () => {
  need();
  const to = `diane@${DOMAIN}`;
  // Mail already at den: 12 messages, 4 of them read (moved to cur/ with the S flag, as an IMAP server does).
  const old: string[] = [];
  for (let i = 0; i < 12; i++) {
    old.push(`old-${i}@client.test`);
    assert.equal(await sendAsync('den', to, `old-${i}@client.test`), 0);
  }
  await waitFor(
    () => messageIds('den', 'diane').ids.size === 12,
    60_000,
    () => `diane's 12 messages at den:\n${logs()}`,
  );
  const md = join(roots.den, 'domains', DOMAIN, 'diane', 'Maildir');
  const seen = readdirSync(join(md, 'new')).slice(0, 4);
  for (const f of seen) renameSync(join(md, 'new', f), join(md, 'cur', `${f}:2,S`));
  // Traffic from all three offices while the move runs (asked on ny: neither the old office nor the new).
  const accepted: string[] = [];
  let moveDone = false;
  const after: Record<Name, number> = { ny: 0, atl: 0, den: 0 };
  const loop = async (name: Name): Promise<void> => {
    for (let i = 0; !moveDone || after[name] < 3; i++) {
      const id = `live-${name}-${i}@client.test`;
      if ((await sendAsync(name, to, id)) === 0) {
        accepted.push(id);
        if (moveDone) after[name]++;
      }
    }
  };
  const traffic = Promise.all(OFFICES.map((o) => loop(o.name)));
  await waitFor(() => accepted.length >= 6, 60_000, 'traffic to begin');
  const mv = spawn(process.execPath, [MAIN, 'user', 'move', to, '--office', 'atl', '--root', roots.ny], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  mv.stdout.on('data', (c: Buffer) => (out += c.toString()));
  mv.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => mv.on('exit', (c) => r(c)));
  moveDone = true;
  assert.equal(code, 0, out);
  assert.match(out, /diane@megacorp\.example now lives at office atl \(was den\)/);
  assert.match(out, /diane@megacorp\.example: moved from den to atl, \d+ files/);
  await traffic;
  // Every message accepted (before, during, after the move) ends at atl exactly once; den keeps none. A message that
  // waited at an office for the move to be seen is retried (as senders and `quail queue flush` do).
  const want = [...old, ...accepted];
  let flushed = Date.now();
  await waitFor(
    () => {
      if (Date.now() - flushed > 5000) {
        for (const o of OFFICES) quail(['queue', 'flush', '--root', roots[o.name]]);
        flushed = Date.now();
      }
      const at = messageIds('atl', 'diane').ids;
      return want.every((id) => at.has(id)) && messageIds('den', 'diane').ids.size === 0;
    },
    180_000,
    () => {
      const at = messageIds('atl', 'diane').ids;
      return `missing at atl: ${want.filter((id) => !at.has(id)).join(' ')}; left at den: ${[
        ...messageIds('den', 'diane').ids.keys(),
      ].join(' ')}\n${OFFICES.map((o) => quail(['queue', 'list', '--root', roots[o.name]])).join('\n')}\n${logs()}`;
    },
  );
  const { ids, cur } = messageIds('atl', 'diane');
  for (const [id, n] of ids) assert.equal(n, 1, `${id}: exactly once at atl`);
  assert.equal(ids.size, want.length, 'nothing else arrived');
  for (const f of seen) assert.ok(cur.includes(`${f}:2,S`), `${f} still read (cur/, flag S) at atl`);
  for (const o of OFFICES) assert.doesNotMatch(procs[o.name]?.log() ?? '', /send\.bounce/, `${o.name}: no bounce`);
  assert.match(procs.den?.log() ?? '', /offices\.moved.*address=diane@megacorp\.example/);
  assert.match(
    quail(['user', 'move', to, '--status', '--root', roots.den]),
    /diane@megacorp\.example: moved from den to atl, \d+ files/,
  );
});

void test('offices: PostgreSQL stopped → RCPT 451 4.3.0 at every office, no bounce, the table keeps its age', async () => {
  need();
  cluster?.stop();
  cluster = null;
  for (const o of OFFICES) {
    const r = send(o.name, `nick@${DOMAIN}`, 'db-down');
    assert.match(r.out, /<\*\* 451 4\.3\.0/, `${o.name}: 451 4.3.0 at RCPT`);
  }
  await waitFor(
    () => (procs.ny?.log() ?? '').includes('offices.error'),
    30_000,
    () => logs(),
  );
  assert.match(quail(['status', '--root', roots.ny]), /mailbox→office table: 7 mailboxes in 3 offices, read \d+ s ago/);
  for (const o of OFFICES) assert.doesNotMatch(procs[o.name]?.log() ?? '', /send\.bounce/, `${o.name}: no bounce`);
});
