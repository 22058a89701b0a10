// The failed-login throttle counts a login under its mailbox's own name: a guess at joe@alias.example (an alias domain
// of example.com) is a guess at joe@example.com, in SMTP AUTH, POP3 and ODMR AUTH, each with the directory links
// quail start uses on a real SQLite directory and real sockets on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, openDirectory } from '../directory/index.js';
import { createPop3Server } from '../pop3d/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { DirectoryLink } from './directory-link.js';
import { OdmrServer } from './odmr.js';
import { DirectoryAuthenticator } from './pop3.js';
import { harness } from '../../test/support/smtpd.js';
import { Wire } from '../../test/support/hostile-wire.js';
import { PopClient } from '../../test/support/pop3d.js';

/** A mail root whose directory holds example.com (alias domain alias.example) and the mailbox joe@example.com. */
async function directoryRoot(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'quail-throttle-canon-'));
  mkdirSync(join(root, 'control'));
  const d = await openDirectory({ root });
  try {
    await d.addDomain({ name: 'example.com', account: { user: 'nobody', uid: 65534, gid: 65534 } });
    await d.addAliasDomain('alias.example', 'example.com');
    const passwordHash = await hashPassword('secret', { ln: 4, r: 8, p: 1 });
    await d.addMailbox({ domain: 'example.com', local: 'joe', passwordHash });
  } finally {
    await d.close();
  }
  return root;
}

const plain = (login: string, password: string): string =>
  Buffer.from(`\0${login}\0${password}`, 'utf8').toString('base64');

/** Greeting, EHLO, then AUTH PLAIN as `login` with a wrong password, one command at a time: AUTH's reply code. */
async function failAuth(port: number, login: string): Promise<number> {
  const w = await Wire.connect(port);
  try {
    assert.equal(await w.code(), 220);
    w.send('EHLO c\r\n');
    assert.equal(await w.code(), 250);
    w.send(`AUTH PLAIN ${plain(login, 'wrong')}\r\n`);
    return await w.code();
  } finally {
    w.destroy();
  }
}

/** Another client's address: it has no failures of its own, so only the login's count can slow it. */
const ELSEWHERE = '192.0.2.7';

void test('throttle: a failed login through an alias domain counts for the mailbox (SMTP AUTH, POP3, ODMR)', async () => {
  const root = await directoryRoot();
  try {
    // SMTP AUTH (smtpd with start's DirectoryLink)
    const smtpThrottle = new LoginThrottle();
    const smtp = await harness({
      control: { 'tcp.smtp': ':allow,QUAIL_CLEARAUTH="1"\n' },
      authenticator: new DirectoryLink(root),
      sharedThrottle: smtpThrottle,
    });
    try {
      assert.equal(await failAuth(smtp.port, 'Joe@Alias.Example'), 535);
      assert.ok(smtpThrottle.delayFor(ELSEWHERE, 'joe@example.com') > 0, 'SMTP: joe@example.com is slowed');
    } finally {
      await smtp.close();
    }

    // POP3 (pop3d with start's DirectoryAuthenticator)
    const popThrottle = new LoginThrottle();
    const auth = new DirectoryAuthenticator(root, true, () => Promise.resolve());
    const pop = createPop3Server({
      authenticator: auth,
      throttle: popThrottle,
      clientRules: () => ({ clearAuth: true }),
    });
    try {
      const { port } = await pop.listen(0, '127.0.0.1');
      const c = await PopClient.open(port);
      await c.line();
      assert.match(await c.cmd('USER joe%alias.example'), /^\+OK/);
      assert.equal(await c.cmd('PASS wrong'), '-ERR [AUTH] authentication failed');
      await c.cmd('QUIT');
      assert.ok(popThrottle.delayFor(ELSEWHERE, 'joe@example.com') > 0, 'POP3: joe@example.com is slowed');
    } finally {
      await pop.close();
      await auth.close();
    }

    // ODMR AUTH (start's OdmrServer and its directory link)
    const odmrThrottle = new LoginThrottle();
    const odmr = new OdmrServer({
      root,
      throttle: odmrThrottle,
      inject: () => Promise.reject(new Error('no queue in this test')),
      log: () => undefined,
    });
    const listener = odmr.listener({ host: '127.0.0.1', port: 0, maxConnections: 5, maxPerIp: 5 });
    try {
      const { port } = await listener.listen(0, '127.0.0.1');
      assert.equal(await failAuth(port, 'joe@alias.example'), 535);
      assert.ok(odmrThrottle.delayFor(ELSEWHERE, 'joe@example.com') > 0, 'ODMR: joe@example.com is slowed');
    } finally {
      await listener.close();
      await odmr.closeLink();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
