// SMTP AUTH and POP3 USER/PASS over the real directory: an unknown login costs one password verification, as a wrong
// password does (a dummy hash of the same scheme and cost), so the time of the answer does not tell which mailboxes
// exist; a mailbox blocked for the service is verified before it is refused. A mailbox imported with a cheaper hash
// ($1$ md5-crypt, $6$ SHA-crypt) costs the dummy's verification too when the password is wrong, so it is answered no
// sooner than an unknown login; its right password costs its own hash alone. The work is counted, never timed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDomain, createMailbox, openDirectory, verifyPassword } from '../directory/index.js';
import { createPop3Server } from '../pop3d/index.js';
import { DirectoryLink } from './directory-link.js';
import { DirectoryAuthenticator } from './pop3.js';
import { harness, talk } from '../../test/support/smtpd.js';
import { userPass } from '../../test/support/pop3d.js';

const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
/** `$scrypt$ln=15,r=8,p=1` of a PHC string: the scheme and its cost, without salt and key. */
const schemeOf = (hash: string): string => hash.split('$').slice(0, 3).join('$');

/** Hashes of `pw` as vpopmail kept them (openssl passwd -1 / -6), imported as they are. */
const MD5_HASH = '$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.';
const SHA_HASH =
  '$6$abcdefghijklmnop$GRSTFj3H0pZ9BY1uhdqITG.qORbXkTk40qgaa1roNICfs/axSgdNnbKEYghuyLnrmnFXvSE09GdxJbCDOnxdc1';

/**
 * A directory with joe (password pw), nopw (no password), blocked (pw, no-smtp-auth and no-pop), and md5 and sha
 * (pw, imported $1$ and $6$ hashes).
 */
async function directory(): Promise<{ root: string; joeHash: string; blockedHash: string }> {
  const root = mkdtempSync(join(tmpdir(), 'quail-oracle-'));
  const dir = await openDirectory({ root });
  try {
    await createDomain({ root, dir }, { name: 'example.com', account: acct });
    const joe = await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
    await createMailbox({ root, dir }, { address: 'nopw@example.com', password: null });
    const blocked = await createMailbox({ root, dir }, { address: 'blocked@example.com', password: 'pw' });
    await dir.updateMailbox('example.com', 'blocked', { flags: ['no-smtp-auth', 'no-pop'] });
    for (const [local, passwordHash] of [
      ['md5', MD5_HASH],
      ['sha', SHA_HASH],
    ] as const) {
      await createMailbox({ root, dir }, { address: `${local}@example.com`, password: null });
      await dir.updateMailbox('example.com', local, { passwordHash });
    }
    return { root, joeHash: joe.passwordHash, blockedHash: blocked.passwordHash };
  } finally {
    await dir.close();
  }
}

/** The real verifier, its calls counted (the hash each was given). */
function counting(): { hashes: string[]; verify: (password: string, hash: string) => Promise<boolean> } {
  const hashes: string[] = [];
  return { hashes, verify: (password, hash) => (hashes.push(hash), verifyPassword(password, hash)) };
}

/** [login, password, what the hash verified must be: 'dummy' or the mailbox's own]. */
function refusals(d: { joeHash: string; blockedHash: string }): ReadonlyArray<readonly [string, string, string]> {
  return [
    ['ann@nowhere.test', 'pw', 'dummy'], // unknown domain
    ['ann@example.com', 'pw', 'dummy'], // unknown mailbox
    ['nopw@example.com', 'pw', 'dummy'], // no password set
    ['joe@example.com', 'wrong', d.joeHash], // wrong password
    ['blocked@example.com', 'pw', d.blockedHash], // right password, service blocked
  ];
}

function assertOneVerification(hashes: readonly string[], want: string, joeHash: string, login: string): void {
  assert.equal(hashes.length, 1, `${login}: password verifications`);
  const got = hashes[0] ?? '';
  if (want !== 'dummy') return assert.equal(got, want, login);
  assert.equal(schemeOf(got), schemeOf(joeHash), `${login}: the dummy has the scheme and cost of a real hash`);
  assert.notEqual(got, joeHash, login);
}

/**
 * The imported mailboxes over one service: an unknown login costs the dummy's verification, a wrong password the
 * mailbox's own hash and then the dummy's (so never less than an unknown login), the right password its own hash alone.
 */
async function assertImportedCost(
  c: { readonly hashes: string[] },
  joeHash: string,
  refused: (login: string, pw: string) => Promise<void>,
  accepted: (login: string, pw: string) => Promise<void>,
): Promise<void> {
  const dummy = (h: string | undefined): boolean =>
    h !== undefined && h !== joeHash && schemeOf(h) === schemeOf(joeHash);
  const cases: ReadonlyArray<readonly [string, readonly string[]]> = [
    ['ann@example.com', []],
    ['md5@example.com', [MD5_HASH]],
    ['sha@example.com', [SHA_HASH]],
  ];
  for (const [login, own] of cases) {
    c.hashes.length = 0;
    await refused(login, 'wrong');
    assert.deepEqual(c.hashes.slice(0, -1), own, login);
    assert.ok(dummy(c.hashes.at(-1)), `${login}: the last verification is the dummy's: ${c.hashes.join(' ')}`);
  }
  c.hashes.length = 0;
  await accepted('sha@example.com', 'pw');
  assert.deepEqual(c.hashes, [SHA_HASH], 'a right password costs its own hash alone');
}

void test('SMTP AUTH: an unknown login, a mailbox without password and a blocked one cost one verification each, as a wrong password; a wrong one for an imported $1$/$6$ hash costs the dummy too; the reply is the same 535', async () => {
  const d = await directory();
  const c = counting();
  const h = await harness({
    authenticator: new DirectoryLink(d.root, undefined, undefined, c.verify),
    control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' },
  });
  const auth = (login: string, pw: string): Promise<string> =>
    talk(h.port, `EHLO c\r\nAUTH PLAIN ${Buffer.from(`\0${login}\0${pw}`).toString('base64')}\r\nQUIT\r\n`);
  try {
    for (const [login, pw, want] of refusals(d)) {
      c.hashes.length = 0;
      assert.match(await auth(login, pw), /\r\n535 5\.7\.8 authentication failed \(#5\.7\.8\)\r\n221 /, login);
      assertOneVerification(c.hashes, want, d.joeHash, login);
    }
    c.hashes.length = 0;
    assert.match(await auth('joe@example.com', 'pw'), /\r\n235 2\.7\.0 authentication successful\r\n/);
    assert.deepEqual(c.hashes, [d.joeHash]);
    await assertImportedCost(
      c,
      d.joeHash,
      async (login, pw) => assert.match(await auth(login, pw), /\r\n535 5\.7\.8 /, login),
      async (login, pw) => assert.match(await auth(login, pw), /\r\n235 2\.7\.0 /, login),
    );
  } finally {
    await h.close();
    rmSync(d.root, { recursive: true, force: true });
  }
});

void test('POP3 USER/PASS: an unknown login, a mailbox without password and a blocked one cost one verification each, as a wrong password; a wrong one for an imported $1$/$6$ hash costs the dummy too; the reply is the same -ERR', async () => {
  const d = await directory();
  const c = counting();
  const server = createPop3Server({
    authenticator: new DirectoryAuthenticator(d.root, true, () => Promise.resolve(), c.verify),
    throttle: { baseMs: 1, maxMs: 4 },
    clientRules: () => ({ clearAuth: true }),
    log: () => undefined,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const login = (user: string, pw: string): Promise<string> => userPass(port, user, pw);
  try {
    for (const [user, pw, want] of refusals(d)) {
      c.hashes.length = 0;
      assert.equal(await login(user, pw), '-ERR [AUTH] authentication failed', user);
      assertOneVerification(c.hashes, want, d.joeHash, user);
    }
    c.hashes.length = 0;
    assert.match(await login('joe@example.com', 'pw'), /^\+OK 0 messages/);
    assert.deepEqual(c.hashes, [d.joeHash]);
    await assertImportedCost(
      c,
      d.joeHash,
      async (user, pw) => assert.equal(await login(user, pw), '-ERR [AUTH] authentication failed', user),
      async (user, pw) => assert.match(await login(user, pw), /^\+OK 0 messages/, user),
    );
  } finally {
    await server.close();
    rmSync(d.root, { recursive: true, force: true });
  }
});
