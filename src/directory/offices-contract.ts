// The offices part of the directory contract (issue 16), run on both backends by sqlite.test.ts and postgres.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectoryError } from './names.js';
import type { Directory } from './types.js';

const acct = { user: 'quail', uid: 4242, gid: 4243 };

export function officesContract(name: string, factory: () => Promise<Directory>): void {
  const withDir = (title: string, body: (d: Directory) => Promise<void>): void => {
    void test(`${name}: offices: ${title}`, async () => {
      const d = await factory();
      try {
        await body(d);
      } finally {
        await d.close();
      }
    });
  };

  withDir('add, list, duplicates and bad values refused', async (d) => {
    const ny = await d.addOffice({ name: 'NY', host: '127.0.0.2' });
    assert.deepEqual([ny.name, ny.host, ny.port, ny.tls], ['ny', '127.0.0.2', 25, '']);
    await d.addOffice({ name: 'atl', host: 'mail.atl.example', port: 2525, tls: 'verify' });
    assert.deepEqual(
      (await d.listOffices()).map((o) => `${o.name} ${o.host}:${o.port} ${o.tls}`),
      ['atl mail.atl.example:2525 verify', 'ny 127.0.0.2:25 '],
    );
    await assert.rejects(d.addOffice({ name: 'ny', host: 'x.example' }), /office ny already exists/);
    await assert.rejects(d.addOffice({ name: '9x', host: 'x.example' }), DirectoryError);
    await assert.rejects(d.addOffice({ name: 'den', host: 'bad host' }), /office host/);
    await assert.rejects(d.addOffice({ name: 'den', host: 'x.example', port: 70000 }), /office port/);
    await assert.rejects(d.addOffice({ name: 'den', host: 'x.example', tls: 'sometimes' }), /office TLS/);
    await assert.rejects(d.addOffice({ name: 'den', host: 'x.example', tls: '/etc/ca.pem\nverify' }), /office TLS/);
    assert.equal((await d.listOffices()).length, 2);
  });

  withDir('a mailbox gets the only office by default; with several one must be named', async (d) => {
    await d.addDomain({ name: 'megacorp.example', account: acct });
    await d.addMailbox({ domain: 'megacorp.example', local: 'solo', passwordHash: '' });
    assert.equal(await d.mailboxOffice('megacorp.example', 'solo'), '', 'no offices: none');
    await d.addOffice({ name: 'ny', host: '127.0.0.2' });
    await d.addMailbox({ domain: 'megacorp.example', local: 'nick', passwordHash: '' });
    assert.equal(await d.mailboxOffice('megacorp.example', 'NICK'), 'ny');
    await d.addOffice({ name: 'atl', host: '127.0.0.3' });
    await assert.rejects(
      d.addMailbox({ domain: 'megacorp.example', local: 'alex', passwordHash: '' }),
      /several offices \(atl, ny\): say which with --office/,
    );
    await assert.rejects(
      d.addMailbox({ domain: 'megacorp.example', local: 'alex', passwordHash: '', office: 'den' }),
      /no office den/,
    );
    assert.equal(await d.getMailbox('megacorp.example', 'alex'), null, 'a refused add leaves nothing');
    await d.addMailbox({ domain: 'megacorp.example', local: 'alex', passwordHash: '', office: 'ATL' });
    assert.deepEqual(await d.mailboxHomes(), [
      { domain: 'megacorp.example', local: 'alex', office: 'atl' },
      { domain: 'megacorp.example', local: 'nick', office: 'ny' },
      { domain: 'megacorp.example', local: 'solo', office: '' },
    ]);
    assert.equal(await d.mailboxOffice('megacorp.example', 'nobody'), null);
  });

  withDir('move a mailbox; an office that holds mailboxes cannot be removed', async (d) => {
    await d.addDomain({ name: 'megacorp.example', account: acct });
    await d.addOffice({ name: 'atl', host: '127.0.0.3' });
    await d.addOffice({ name: 'den', host: '127.0.0.4' });
    await d.addMailbox({ domain: 'megacorp.example', local: 'alice', passwordHash: '', office: 'atl' });
    await assert.rejects(d.deleteOffice('atl'), /still holds 1 mailbox: move them first/);
    await d.setMailboxOffice('megacorp.example', 'alice', 'den');
    assert.equal(await d.mailboxOffice('megacorp.example', 'alice'), 'den');
    await assert.rejects(d.setMailboxOffice('megacorp.example', 'alice', 'nowhere'), /no office nowhere/);
    await assert.rejects(d.setMailboxOffice('megacorp.example', 'ghost', 'den'), /no mailbox ghost@megacorp.example/);
    assert.equal(await d.deleteOffice('atl'), true);
    assert.equal(await d.deleteOffice('atl'), false);
    assert.deepEqual(
      (await d.listOffices()).map((o) => o.name),
      ['den'],
    );
  });
}
