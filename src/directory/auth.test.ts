// The directory's logins and password hashes: authenticate over a real directory, scrypt and crypt(3) hashes.
// tier: system (needs openssl)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  authenticate,
  createDomain,
  createMailbox,
  hashPassword,
  openDirectory,
  verifyPassword,
  type Directory,
} from './index.js';

const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

async function world(): Promise<{ root: string; dir: Directory; done: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'quail-auth-'));
  const dir = await openDirectory({ root });
  await createDomain({ root, dir }, { name: 'example.com', account: acct });
  await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
  return {
    root,
    dir,
    done: async () => {
      await dir.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

void test('authenticate: user@domain and user%domain, wrong password, service flags, alias domains', async () => {
  const w = await world();
  try {
    assert.equal((await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir }))?.local, 'joe');
    assert.equal((await authenticate(w.root, 'JOE%example.com', 'pw', { directory: w.dir }))?.local, 'joe');
    assert.ok((await w.dir.getMailbox('example.com', 'joe'))?.lastLogin instanceof Date);
    assert.equal(await authenticate(w.root, 'joe@example.com', 'wrong', { directory: w.dir }), null);
    assert.equal(await authenticate(w.root, 'joe', 'pw', { directory: w.dir }), null);
    assert.equal(await authenticate(w.root, 'ann@example.com', 'pw', { directory: w.dir }), null);
    await w.dir.updateMailbox('example.com', 'joe', { flags: ['no-pop'] });
    assert.equal(await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir, service: 'pop' }), null);
    assert.equal(
      (await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir, service: 'smtp' }))?.local,
      'joe',
    );
    // Opening the directory itself from the root.
    assert.equal((await authenticate(w.root, 'joe@example.com', 'pw'))?.local, 'joe');
  } finally {
    await w.done();
  }
});

void test('passwords: scrypt round trip; crypt(3) $1$ $5$ $6$ hashes made by openssl verify', async () => {
  const h = await hashPassword('s3cret', { ln: 10, r: 8, p: 1 });
  assert.match(h, /^\$scrypt\$ln=10,r=8,p=1\$/);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('s3cret!', h), false);
  assert.equal(await verifyPassword('', ''), false);
  for (const [flag, salt] of [
    ['-1', 'abcdefgh'],
    ['-5', 'saltsaltsalt1234'],
    ['-6', 'x7'],
    ['-5', 'rounds=1000$short'],
    ['-1', 'a'],
  ]) {
    for (const pw of ['secret', 'a much longer password that exceeds sixty-four bytes of length for the hash!', 'é']) {
      const args = ['passwd', flag ?? '', ...(salt?.startsWith('rounds=') ? [] : ['-salt', salt ?? '']), pw];
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const hash = r.stdout.trim();
      assert.equal(await verifyPassword(pw, hash), true, `${flag} ${hash}`);
      assert.equal(await verifyPassword(`${pw}x`, hash), false, `${flag} ${hash}`);
    }
  }
  // The SHA-crypt specification's own test vector with a custom round count.
  assert.equal(
    await verifyPassword(
      'Hello world!',
      '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
    ),
    true,
  );
});

void test('authenticate: a failure costs the dummy too unless the hash is scrypt at the dummy cost or more; a success never does', async () => {
  const w = await world();
  try {
    const verified: string[] = [];
    const verify = (pw: string, hash: string): Promise<boolean> => (verified.push(hash), verifyPassword(pw, hash));
    const strong = await hashPassword('pw', { ln: 15, r: 8, p: 2 });
    const cheap = await hashPassword('pw', { ln: 4, r: 8, p: 1 });
    const cases: ReadonlyArray<readonly [string, number]> = [
      [(await w.dir.getMailbox('example.com', 'joe'))?.passwordHash ?? '', 1], // hashPassword's own: the dummy's cost
      [strong, 1], // more than the dummy's
      [cheap, 2], // scrypt, but cheaper
      ['$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.', 2], // imported md5-crypt
      ['$7$unknown', 2], // a scheme never verified: answered at once without the dummy
    ];
    for (const [hash, failureCost] of cases) {
      await w.dir.updateMailbox('example.com', 'joe', { passwordHash: hash });
      verified.length = 0;
      assert.equal(await authenticate(w.root, 'joe@example.com', 'wrong', { directory: w.dir, verify }), null);
      assert.equal(verified.length, failureCost, `${hash}: ${verified.join(' ')}`);
      assert.equal(verified[0], hash);
      if (hash === cheap || hash.startsWith('$1$')) {
        verified.length = 0;
        assert.equal((await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir, verify }))?.local, 'joe');
        assert.deepEqual(verified, [hash], 'a success costs its own hash alone');
      }
    }
    assert.equal((await w.dir.getMailbox('example.com', 'joe'))?.passwordHash, '$7$unknown', 'hashes are not changed');
  } finally {
    await w.done();
  }
});
