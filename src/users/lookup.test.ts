// Lookup tests on real files: users/cdb (C.3), passwd fallback with real stat (C.4), alias, newu and newmrh.
// tier: system (needs cdb)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdbGet } from '../cdb/index.js';
import { QuailError } from '../core/index.js';
import { AssignFormatError, getpw, lookupAssignment, newmrh, newu, systemPasswd, tablePasswd } from './index.js';

function withRoot(body: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'quail-users-'));
  try {
    mkdirSync(join(root, 'users'));
    mkdirSync(join(root, 'control'));
    body(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function assign(root: string, text: string): void {
  writeFileSync(join(root, 'users', 'assign'), text, 'latin1');
  newu(root);
}

function home(root: string, name: string, uid: number): string {
  const h = join(root, 'home', name);
  mkdirSync(h, { recursive: true });
  chownSync(h, uid, 42000);
  return h;
}

const pick = (a: { user: string; uid: number; home: string; dash: string; ext: string; via: string }): string =>
  `${a.user}:${a.uid}:${a.home}:${a.dash}:${a.ext}:${a.via}`;

void test('cdb lookup: simple beats wildcard, longest wildcard, catch-all, case, wildcard rest keeps case', () => {
  withRoot((root) => {
    assign(
      root,
      [
        '+:catch:9:9:/c:-::',
        '+joe-:wjoe:2:2:/w:-:p-:',
        '+jo:wjo:3:3:/wj:-::',
        '=joe:sjoe:1:1:/s:::',
        '=joe:second:5:5:/s2:::',
        '+JOE:never:4:4:/n:-::',
        '.',
        '',
      ].join('\n'),
    );
    const passwd = tablePasswd([]);
    const look = (local: string): string => pick(lookupAssignment({ root, local, passwd }));
    assert.equal(look('joe'), 'sjoe:1:/s:::simple');
    assert.equal(look('JOE'), 'sjoe:1:/s:::simple');
    assert.equal(look('joe-Foo'), 'wjoe:2:/w:-:p-Foo:wildcard');
    assert.equal(look('jo'), 'wjo:3:/wj:-::wildcard');
    assert.equal(look('x'), 'catch:9:/c:-:x:wildcard');
    // '+JOE' stored wildchar 'E' but the lookup tests 'e': the key '!joe' is never tried (C.3.3 quirk).
    assert.equal(look('JOEx'), 'wjo:3:/wj:-:Ex:wildcard');
  });
});

void test('cdb lookup: uid/gid decimal prefixes, uid 0 refused, gid 0 accepted, no match falls through', () => {
  withRoot((root) => {
    assign(root, '=a:u:12abc:x:/h:::\n=r:root:0:0:/root:::\n=b:u:7:zz:/h:::\n.\n');
    const passwd = tablePasswd([{ name: 'alias', uid: 1001, gid: 1001, home: '/nonexistent' }]);
    const a = lookupAssignment({ root, local: 'a', passwd });
    assert.equal(a.uid, 12);
    assert.equal(a.gid, 0);
    assert.equal(lookupAssignment({ root, local: 'b', passwd }).gid, 0);
    assert.throws(
      () => lookupAssignment({ root, local: 'r', passwd }),
      /^QuailError: Not allowed to perform deliveries as root\.$/,
    );
    assert.equal(lookupAssignment({ root, local: 'zz', passwd }).via, 'alias');
  });
});

void test("cdb lookup: uid and gid kept in 32 bits, as qmail-lspawn's uid_t and gid_t keep them", () => {
  withRoot((root) => {
    const big = '123456789012345678901234567890'; // beyond a double's precision: compared with BigInt's answer
    assign(root, `=w:u:4294967296:4294967297:/h:::\n=v:u:4294967298:${big}:/h:::\n.\n`);
    const passwd = tablePasswd([]);
    assert.throws(
      () => lookupAssignment({ root, local: 'w', passwd }),
      /^QuailError: Not allowed to perform deliveries as root\.$/,
    );
    const v = lookupAssignment({ root, local: 'v', passwd });
    assert.equal(v.uid, 2);
    assert.equal(v.gid, Number(BigInt(big) % 4294967296n));
  });
});

void test('cdb trouble: unreadable or damaged users/cdb is temporary', () => {
  withRoot((root) => {
    writeFileSync(join(root, 'users', 'cdb'), 'short');
    const passwd = tablePasswd([]);
    assert.throws(
      () => lookupAssignment({ root, local: 'a', passwd }),
      (e: unknown) =>
        e instanceof QuailError && e.temporary && e.message === 'Trouble reading users/cdb in qmail-lspawn.',
    );
  });
});

void test('getpw: candidates, dash/ext, <32 chars, home must exist and be owned by the uid', () => {
  withRoot((root) => {
    const long = 'qolongname0123456789abcdefghijkl';
    const entries = [
      { name: 'root', uid: 0, gid: 0, home: '/root' },
      { name: 'qoalice', uid: 42001, gid: 42000, home: home(root, 'qoalice', 42001) },
      { name: 'qomary-ann', uid: 42004, gid: 42000, home: home(root, 'qomary-ann', 42004) },
      { name: 'qodave', uid: 42005, gid: 42000, home: home(root, 'qodave', 0) },
      { name: 'qonohome', uid: 42006, gid: 42000, home: join(root, 'home', 'qonohome') },
      { name: long, uid: 42007, gid: 42000, home: home(root, long, 42007) },
      { name: 'alias', uid: 1001, gid: 1001, home: home(root, 'alias', 1001) },
    ];
    const passwd = tablePasswd(entries);
    const g = (l: string): string => {
      const r = getpw(l, passwd);
      return r ? `${r.user}:${r.dash}:${r.ext}` : 'none';
    };
    assert.equal(g('qoalice'), 'qoalice::');
    assert.equal(g('QOAlice-Foo-Bar'), 'qoalice:-:Foo-Bar');
    assert.equal(g('qoalice-'), 'qoalice:-:');
    assert.equal(g('qoalice--x'), 'qoalice:-:-x');
    assert.equal(g('-qoalice'), 'none');
    assert.equal(g('qomary-ann-x-y'), 'qomary-ann:-:x-y');
    assert.equal(g('qomary-x'), 'none');
    assert.equal(g('root'), 'none');
    assert.equal(g('qodave'), 'none');
    assert.equal(g('qonohome'), 'none');
    assert.equal(g(long), 'none');
    assert.equal(g(''), 'none');
    assert.equal(g('alias-x'), 'alias:-:x');
    const viaAlias = lookupAssignment({ root, local: 'qomary-x', passwd });
    assert.equal(pick(viaAlias), `alias:1001:${join(root, 'home', 'alias')}:-:qomary-x:alias`);
    assert.throws(
      () => lookupAssignment({ root, local: 'x', passwd: tablePasswd(entries.slice(0, 2)) }),
      /^QuailError: Unable to find alias user!$/,
    );
  });
});

void test('systemPasswd: /etc/passwd format; alias stands for control/quailuser when missing', () => {
  withRoot((root) => {
    const file = join(root, 'passwd');
    writeFileSync(
      file,
      'root:x:0:0:root:/root:/bin/sh\nmailer:x:4242:4343:Mail:/home/mailer:/bin/false\nbroken line\n',
    );
    const p = systemPasswd({ root, passwdFile: file });
    assert.deepEqual(p.byName('mailer'), { name: 'mailer', uid: 4242, gid: 4343, home: '/home/mailer' });
    assert.equal(p.byName('alias'), undefined);
    writeFileSync(join(root, 'control', 'quailuser'), 'mailer\n');
    assert.deepEqual(systemPasswd({ root, passwdFile: file }).byName('alias'), {
      name: 'alias',
      uid: 4242,
      gid: 4343,
      home: join(root, 'alias'),
    });
  });
});

void test('newu: bad users/assign keeps the old users/cdb; good one replaces it atomically with mode 0644', () => {
  withRoot((root) => {
    assign(root, '=a:u:1:2:/h:::\n.\n');
    const cdb = join(root, 'users', 'cdb');
    const before = readFileSync(cdb);
    writeFileSync(join(root, 'users', 'assign'), '=a:u:1:2:/h:::\n\n.\n');
    assert.throws(
      () => newu(root),
      (e: unknown) =>
        e instanceof AssignFormatError &&
        e.temporary &&
        e.message ===
          'bad format in users/assign line 2: blank line (users/assign allows no blank lines or comments); the old users/cdb is kept',
    );
    assert.deepEqual(readFileSync(cdb), before);
    assert.equal(existsSync(`${cdb}.tmp`), false);
    assign(root, '=b:u:1:2:/h:::\n.\n');
    assert.equal(statSync(cdb).mode & 0o777, 0o644);
    assert.equal(cdbGet(readFileSync(cdb), Buffer.from('!a\0')), undefined);
    assert.ok(cdbGet(readFileSync(cdb), Buffer.from('!b\0')));
  });
});

void test('newmrh: lowercased list entries, empty values, comments and blanks skipped; missing file fails', () => {
  withRoot((root) => {
    assert.throws(() => newmrh(root), /morercpthosts does not exist/);
    writeFileSync(join(root, 'control', 'morercpthosts'), 'Example.COM  \n\n#comment\n other.test\nlast.test');
    newmrh(root);
    const db = readFileSync(join(root, 'control', 'morercpthosts.cdb'));
    assert.deepEqual(cdbGet(db, Buffer.from('example.com')), Buffer.alloc(0));
    assert.deepEqual(cdbGet(db, Buffer.from(' other.test')), Buffer.alloc(0));
    assert.deepEqual(cdbGet(db, Buffer.from('last.test')), Buffer.alloc(0));
    assert.equal(cdbGet(db, Buffer.from('#comment')), undefined);
    assert.equal(cdbGet(db, Buffer.from('Example.COM')), undefined);
  });
});

/** Waits until users/cdb is older than the 2 s during which a changed file is read again at every lookup. */
async function settled(root: string): Promise<void> {
  const st = statSync(join(root, 'users', 'cdb'));
  while (Date.now() - Math.max(st.mtimeMs, st.ctimeMs) < 2200) await new Promise((r) => setTimeout(r, 50));
}

void test('kept users/cdb answers follow the file: replaced by newu, rewritten in place, removed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-users-'));
  try {
    mkdirSync(join(root, 'users'));
    mkdirSync(join(root, 'control'));
    const passwd = tablePasswd([{ name: 'alias', uid: 7, gid: 7, home: '/alias' }]);
    const look = (): string => pick(lookupAssignment({ root, local: 'joe', passwd }));
    assign(root, '=joe:aaa:1:1:/a:::\n.\n');
    assert.equal(look(), 'aaa:1:/a:::simple');
    await settled(root);
    assert.equal(look(), 'aaa:1:/a:::simple', 'answered from the kept answers now');
    assign(root, '=joe:bbb:1:1:/b:::\n.\n'); // newu: a new file by rename
    assert.equal(look(), 'bbb:1:/b:::simple');
    await settled(root);
    assert.equal(look(), 'bbb:1:/b:::simple');
    // the same inode and size, other bytes: mtime and ctime differ, so the file is read again
    const kept = readFileSync(join(root, 'users', 'cdb'));
    writeFileSync(join(root, 'users', 'cdb'), Buffer.from(kept.toString('latin1').replace('bbb', 'ccc'), 'latin1'));
    assert.equal(look(), 'ccc:1:/b:::simple');
    rmSync(join(root, 'users', 'cdb'));
    assert.equal(look(), 'alias:7:/alias:-:joe:alias', 'no users/cdb: the alias account');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
