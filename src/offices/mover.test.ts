// The Maildir move between two offices' roots sharing one SQLite directory file: every file once, flags and folders
// kept, repeatable after a crash at any step, the cap on what waits in the directory, a late delivery followed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { openDirectory, type Directory } from '../directory/index.js';
import { deliveryAccount } from '../../test/support/account.js';
import { movePass, type MovePassReport } from './mover.js';

/** The domain's account: as root, the quail account (control/quailuser of both roots); else the invoking user. */
const acct = deliveryAccount();
const D = 'megacorp.example';

interface World {
  base: string;
  atl: string;
  den: string;
  da: Directory;
  dd: Directory;
}

async function world(): Promise<World> {
  const base = mkdtempSync(join(tmpdir(), 'quail-mover-'));
  const url = `sqlite:${join(base, 'shared.sqlite')}`;
  const atl = join(base, 'atl');
  const den = join(base, 'den');
  for (const r of [atl, den]) {
    mkdirSync(join(r, 'control'), { recursive: true });
    writeFileSync(join(r, 'control', 'quailuser'), `${acct.user}\n`);
  }
  const da = await openDirectory({ root: atl, url });
  const dd = await openDirectory({ root: den, url });
  await da.addDomain({ name: D, account: acct });
  await da.addOffice({ name: 'atl', host: '127.0.0.3' });
  await da.addOffice({ name: 'den', host: '127.0.0.4' });
  await da.addMailbox({ domain: D, local: 'alice', passwordHash: '', office: 'atl' });
  return { base, atl, den, da, dd };
}

const maildir = (root: string, folder = ''): string => join(root, 'domains', D, 'alice', 'Maildir', folder);

function put(root: string, folder: string, sub: 'new' | 'cur', file: string, body: string): void {
  const dir = maildir(root, folder);
  for (const s of ['new', 'cur', 'tmp']) mkdirSync(join(dir, s), { recursive: true });
  writeFileSync(join(dir, sub, file), body);
}

/** Every message file under a root's Maildir: `folder/sub/file` → contents. */
function files(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const md = maildir(root);
  if (!existsSync(md)) return out;
  const folders = ['', ...readdirSync(md).filter((n) => n.startsWith('.') && existsSync(join(md, n, 'cur')))];
  for (const f of folders)
    for (const s of ['new', 'cur'])
      for (const n of readdirSync(join(md, f, s))) out.set(`${f}/${s}/${n}`, readFileSync(join(md, f, s, n), 'utf8'));
  return out;
}

const total = (rs: MovePassReport[]): MovePassReport =>
  rs.reduce(
    (a, r) => ({
      pushed: a.pushed + r.pushed,
      written: a.written + r.written,
      removed: a.removed + r.removed,
      finished: [...a.finished, ...r.finished],
      errors: [...a.errors, ...r.errors],
    }),
    { pushed: 0, written: 0, removed: 0, finished: [], errors: [] },
  );

/** Alternate passes (old, new) until the move is finished; at most `max` rounds. */
async function run(w: World, max = 20, capBytes?: number): Promise<MovePassReport & { rounds: number }> {
  const rs: MovePassReport[] = [];
  for (let i = 1; i <= max; i++) {
    rs.push(await movePass({ root: w.atl, office: 'atl', dir: w.da, ...(capBytes ? { capBytes } : {}) }));
    rs.push(await movePass({ root: w.den, office: 'den', dir: w.dd }));
    const [m] = await w.da.mailboxMoves(D, 'alice');
    if (m?.finished) return { ...total(rs), rounds: i };
  }
  return { ...total(rs), rounds: max + 1 };
}

async function done(w: World): Promise<void> {
  await w.da.close();
  await w.dd.close();
  rmSync(w.base, { recursive: true, force: true });
}

/** A test body in a fresh world, cleaned up after. */
async function inWorld(body: (w: World) => Promise<void>): Promise<void> {
  const w = await world();
  try {
    await body(w);
  } finally {
    await done(w);
  }
}

void test('mover: the whole Maildir (inbox, flags, a folder) arrives once at the new office and leaves the old', async () => {
  const w = await world();
  try {
    put(w.atl, '', 'new', '1000.a.atl', 'one');
    put(w.atl, '', 'new', '1001.b.atl', 'two');
    put(w.atl, '', 'cur', '1002.c.atl:2,S', 'three (seen)');
    put(w.atl, '', 'cur', '1003.d.atl:2,FS', 'four (flagged)');
    put(w.atl, '.Sent', 'cur', '1004.e.atl:2,S', 'five (sent)');
    put(w.den, '', 'new', '2000.z.den', 'new mail that arrived at den during the move');
    writeFileSync(join(maildir(w.den), 'maildirsize'), '0S\n44 1\n');
    const before = files(w.atl);
    const { from, to, move } = await w.da.moveMailbox(D, 'alice', 'den');
    assert.deepEqual([from, to, move?.from, move?.to], ['atl', 'den', 'atl', 'den']);
    assert.equal(await w.dd.mailboxOffice(D, 'alice'), 'den', 'the switch is at once');
    const r = await run(w);
    assert.deepEqual(r.errors, []);
    assert.equal(r.pushed, 5);
    assert.equal(r.written, 5);
    assert.equal(r.removed, 5);
    assert.equal(r.finished.length, 1);
    assert.equal(files(w.atl).size, 0, 'nothing left at atl');
    const after = files(w.den);
    for (const [k, v] of before) assert.equal(after.get(k), v, `${k} at den, same name (flags) and contents`);
    assert.equal(after.get('/new/2000.z.den'), 'new mail that arrived at den during the move');
    assert.equal(after.size, 6);
    assert.ok(existsSync(join(maildir(w.den, '.Sent'), 'maildirfolder')));
    const [m] = await w.da.mailboxMoves(D, 'alice');
    assert.equal(m?.files, 5);
    assert.ok(m?.finished);
    assert.match(readFileSync(join(maildir(w.den), 'maildirsize'), 'utf8'), /^0S\n44 1\n(\d+ 1\n){5}$/);
  } finally {
    await done(w);
  }
});

void test('mover: a crash at any step repeats it without a duplicate', async () => {
  const w = await world();
  try {
    put(w.atl, '', 'new', '1000.a.atl', 'one');
    put(w.atl, '', 'cur', '1001.b.atl:2,S', 'two');
    const { move } = await w.da.moveMailbox(D, 'alice', 'den');
    assert.ok(move);
    // The old office pushed, then died before it knew: it pushes again; nothing doubles.
    const first = await movePass({ root: w.atl, office: 'atl', dir: w.da });
    assert.equal(first.pushed, 2);
    const again = await movePass({ root: w.atl, office: 'atl', dir: w.da });
    assert.equal(again.pushed, 0, 'already in the directory');
    assert.equal((await w.da.moveFileKeys(move.id)).length, 2);
    await assert.rejects(w.dd.moveMailbox(D, 'alice', 'atl'), /is being moved from office atl to den/);
    // The new office wrote a file, then died before marking it: the file is there (a flag changed since, even).
    put(w.den, '', 'cur', '1001.b.atl:2,RS', 'two');
    const r = await run(w);
    assert.equal(r.written, 1, 'only the file that was not there yet');
    const den = files(w.den);
    assert.deepEqual([...den.keys()].sort(), ['/cur/1001.b.atl:2,RS', '/new/1000.a.atl']);
    assert.equal(files(w.atl).size, 0);
  } finally {
    await done(w);
  }
});

void test('mover: at most the cap waits in the directory; a late delivery at the old office follows the mailbox', async () => {
  const w = await world();
  try {
    for (let i = 0; i < 4; i++) put(w.atl, '', 'new', `100${i}.x.atl`, 'x'.repeat(1000));
    await w.da.moveMailbox(D, 'alice', 'den');
    const p = await movePass({ root: w.atl, office: 'atl', dir: w.da, capBytes: 1500 });
    assert.equal(p.pushed, 1, 'one file over the cap waits');
    const r = await run(w, 20, 1500);
    assert.deepEqual(r.errors, []);
    assert.equal(r.rounds > 2, true, 'several rounds');
    assert.equal(files(w.den).size, 4);
    assert.equal(files(w.atl).size, 0);
    // A delivery that was under way at the switch lands at atl after the move finished: the next pass carries it.
    put(w.atl, '', 'new', '1009.late.atl', 'late');
    const late = await movePass({ root: w.atl, office: 'atl', dir: w.da });
    assert.equal(late.pushed, 1);
    const [reopened] = await w.da.mailboxMoves(D, 'alice');
    assert.equal(reopened?.finished, null, 'reopened');
    await run(w);
    assert.equal(files(w.den).get('/new/1009.late.atl'), 'late');
    assert.equal(files(w.atl).size, 0);
    await assert.rejects(w.da.moveMailbox(D, 'alice', 'den'), /already lives at office den/);
    // Moved back to atl: the first move (finished, still looked after) no longer carries atl's mail away.
    await w.dd.moveMailbox(D, 'alice', 'atl');
    await run(w);
    put(w.atl, '', 'new', '1010.back.atl', 'mail at atl after the move back');
    for (const [root, office, dir] of [
      [w.atl, 'atl', w.da],
      [w.den, 'den', w.dd],
    ] as const)
      assert.equal((await movePass({ root, office, dir })).pushed, 0);
    assert.equal(files(w.atl).get('/new/1010.back.atl'), 'mail at atl after the move back');
    assert.equal(files(w.atl).size, 6, 'all five came back, and the new one stays');
    assert.equal(files(w.den).size, 0);
  } finally {
    await done(w);
  }
});

void test('mover: a mailbox deleted during its move ends the move with a note', async () => {
  const w = await world();
  try {
    put(w.atl, '', 'new', '1000.a.atl', 'one');
    await w.da.moveMailbox(D, 'alice', 'den');
    await w.da.deleteMailbox(D, 'alice');
    const r = await movePass({ root: w.atl, office: 'atl', dir: w.da });
    assert.equal(r.finished.length, 1);
    const [m] = await w.da.mailboxMoves(D, 'alice');
    assert.match(m?.note ?? '', /deleted/);
  } finally {
    await done(w);
  }
});

void test('mover: carried files whose folder, name or flags climb out of the Maildir are refused, not written as root anywhere', async () => {
  const w = await world();
  try {
    put(w.atl, '', 'new', '1000.a.atl', 'one');
    const { move } = await w.da.moveMailbox(D, 'alice', 'den');
    assert.ok(move);
    // What an office (or anyone with the directory's password) can put in the shared table.
    const forged = [
      { folder: '', name: '../../../../../../escape-name', info: '' },
      { folder: '../../../../../escape-folder', name: '1001.b.atl', info: '' },
      { folder: '', name: '1002.c.atl', info: '/../../../../../../../escape-info' },
    ];
    for (const f of forged) assert.ok(await w.da.pushMoveFile(move.id, { ...f, sub: 'new', data: Buffer.from('x') }));
    const r = await run(w);
    for (const n of ['escape-name', 'escape-folder', 'escape-info'])
      assert.equal(existsSync(join(w.base, n)), false, `${n} written outside the Maildir`);
    assert.equal(r.errors.filter((e) => /a carried file was refused/.test(e)).length, 3, r.errors.join('\n'));
    assert.deepEqual([...files(w.den).keys()], ['/new/1000.a.atl'], 'the real mail still arrives');
    assert.equal(r.finished.length, 1);
  } finally {
    await done(w);
  }
});

/** Rows written straight into the shared directory, as another office (or anyone with its password) can. */
function forge(w: World, sql: string, ...args: (string | number)[]): void {
  const db = new Database(join(w.base, 'shared.sqlite'));
  try {
    db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}

void test('mover: a moved mailbox whose shared row names a home outside the root is neither read, emptied nor written', () =>
  inWorld(async (w) => {
    // A victim's Maildir outside the mail roots, that domains/D/<local> reaches with ../
    const victim = join(w.base, 'victim', 'Maildir');
    for (const s of ['new', 'cur', 'tmp']) mkdirSync(join(victim, s), { recursive: true });
    writeFileSync(join(victim, 'new', '1.secret'), 'secret');
    const { move } = await w.da.moveMailbox(D, 'alice', 'den');
    assert.ok(move);
    forge(w, "UPDATE mailboxes SET local = '../../../victim' WHERE local = 'alice'");
    forge(w, "UPDATE mailbox_moves SET local = '../../../victim' WHERE local = 'alice'");
    const rs: MovePassReport[] = [];
    for (let i = 0; i < 3; i++) {
      rs.push(await movePass({ root: w.atl, office: 'atl', dir: w.da }));
      rs.push(await movePass({ root: w.den, office: 'den', dir: w.dd }));
    }
    const r = total(rs);
    assert.equal(readFileSync(join(victim, 'new', '1.secret'), 'utf8'), 'secret', 'the file outside was removed');
    assert.equal(r.pushed, 0, 'a file outside the root was carried into the shared directory');
    assert.ok(
      r.errors.some((e) => /refused: the mailbox name/.test(e)),
      r.errors.join('\n'),
    );
  }));

void test('mover: a domain account of root (or another system account) in the shared row is refused: nothing written as it', () =>
  inWorld(async (w) => {
    put(w.atl, '', 'new', '1000.a.atl', 'one');
    await w.da.moveMailbox(D, 'alice', 'den');
    forge(w, "UPDATE domains SET account = 'root', uid = 0, gid = 0 WHERE name = ?", D);
    const r = await run(w, 3);
    assert.equal(r.written, 0, 'a file was written for uid 0');
    assert.ok(
      r.errors.some((e) => /refused: the account "root" \(uid 0, gid 0\) is root/.test(e)),
      r.errors.join('\n'),
    );
    forge(w, "UPDATE domains SET account = 'daemon', uid = 1, gid = 1 WHERE name = ?", D);
    const r2 = await run(w, 3);
    assert.equal(r2.written, 0, 'a file was written for a system account');
    assert.ok(
      r2.errors.some((e) => /account "daemon".*(system account|not that account)/.test(e)),
      r2.errors.join('\n'),
    );
    assert.equal(files(w.atl).size, 1, 'the mail stays at the old office');
  }));
