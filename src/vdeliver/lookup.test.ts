// vdeliver over the narrow interface alone: an in-memory MailboxLookup (no directory, no database) and real Maildirs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maildirMake } from '../maildir/index.js';
import {
  lookupAddressByParts,
  parsePolicyWord,
  vdeliver,
  type AddressLookup,
  type LookupAlias,
  type LookupDomain,
  type LookupMailbox,
  type MailboxLookup,
} from './index.js';

const mailbox = (local: string): LookupMailbox => ({
  domain: 'example.com',
  local,
  home: `domains/example.com/${local}`,
  flags: [],
  forward: [],
  keepCopy: false,
  quotaBytes: null,
  quotaMessages: null,
});

/** One domain (alias domain example.net), mailbox joe, alias info → joe's Maildir and a forward; every call counted. */
class MemoryLookup implements MailboxLookup {
  readonly calls: string[] = [];
  private readonly dom: LookupDomain = {
    name: 'example.com',
    policy: { kind: 'bounce-no-mailbox' },
    limits: { quotaBytes: null },
  };

  lookupAddress(domain: string, local: string): Promise<AddressLookup | null> {
    return lookupAddressByParts(this, domain, local);
  }

  resolveDomain(name: string): Promise<LookupDomain | null> {
    this.calls.push(`resolveDomain ${name}`);
    return Promise.resolve(name === 'example.com' || name === 'example.net' ? this.dom : null);
  }

  getAlias(domain: string, local: string): Promise<LookupAlias | null> {
    this.calls.push(`getAlias ${domain} ${local}`);
    return Promise.resolve(local === 'info' ? { targets: ['./joe/Maildir/', '&boss@other.example'] } : null);
  }

  getMailbox(domain: string, local: string): Promise<LookupMailbox | null> {
    this.calls.push(`getMailbox ${domain} ${local}`);
    return Promise.resolve(local === 'joe' ? mailbox('joe') : null);
  }

  listMailboxes(domain: string): Promise<readonly LookupMailbox[]> {
    this.calls.push(`listMailboxes ${domain}`);
    return Promise.resolve([mailbox('joe')]);
  }
}

void test('vdeliver needs only MailboxLookup: mailbox, alias (Maildir + forward), unknown address by the policy', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-vdlookup-'));
  try {
    mkdirSync(join(root, 'domains', 'example.com', 'joe'), { recursive: true });
    maildirMake(join(root, 'domains', 'example.com', 'joe', 'Maildir'));
    const msg = join(root, 'msg');
    writeFileSync(msg, 'Subject: hi\n\nhello\n');
    const lookup = new MemoryLookup();
    const send = (domain: string, ext: string) =>
      vdeliver({
        root,
        directory: lookup,
        local: `example.com-${ext}`,
        domain,
        ext,
        messagePath: msg,
        sender: 'ann@other.example',
        dtline: `Delivered-To: example.com-${ext}@example.com\n`,
        rpline: 'Return-Path: <ann@other.example>\n',
      });
    assert.equal((await send('example.net', 'Joe')).result, 'success');
    const info = await send('example.com', 'info');
    assert.deepEqual([info.result, info.forward?.recipients], ['success', ['boss@other.example']]);
    const unknown = await send('example.com', 'nobody');
    assert.deepEqual(
      [unknown.result, /no mailbox here by that name.*#5\.1\.1/.test(unknown.report)],
      ['failure', true],
    );
    const inbox = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    assert.deepEqual(
      readdirSync(inbox)
        .map((f) => readFileSync(join(inbox, f), 'latin1').split('\n')[1])
        .sort(),
      ['Delivered-To: example.com-Joe@example.com', 'Delivered-To: example.com-info@example.com'],
    );
    assert.deepEqual(lookup.calls, [
      'resolveDomain example.net',
      'getAlias example.com joe',
      'getMailbox example.com joe',
      'resolveDomain example.com',
      'getAlias example.com info',
      'resolveDomain example.com',
      'getAlias example.com nobody',
      'getMailbox example.com nobody',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('the policy word (golden): what the directory refuses and vdeliver defers on', () => {
  assert.deepEqual(parsePolicyWord(''), { kind: 'bounce-no-mailbox' });
  assert.deepEqual(parsePolicyWord(' delete '), { kind: 'delete' });
  assert.deepEqual(parsePolicyWord('catch@other.example'), { kind: 'forward', address: 'catch@other.example' });
  assert.deepEqual(parsePolicyWord('mailbox:PostMaster'), { kind: 'mailbox', local: 'postmaster' });
  assert.equal(
    parsePolicyWord('mailbox:a/b'),
    `"a/b" is not a usable local part (no '/', ':', spaces or leading '.', at most 64 characters)`,
  );
  assert.equal(
    parsePolicyWord('bounce'),
    'unknown-address policy "bounce": use bounce-no-mailbox, delete, user@host or mailbox:LOCAL',
  );
});
