// Mailing lists end to end: real SMTP (swaks) into `quail start` as root, mail arriving in real Maildirs.
// tier: system (needs swaks, root)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  listenerPort,
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (quail start drops to control/quailuser; lists run as the domain account)';

let root = '';
let q: QuailProcess | undefined;
let port = 0;
/** The web admin listener, which serves the lists' one-click unsubscribe (src/start/web-routes.ts). */
let webPort = 0;

const R = (): string[] => ['--root', root];

before(async () => {
  if (!isRoot) return;
  root = mkdtempSync(join(tmpdir(), 'quail-lists-'));
  const { chmodSync } = await import('node:fs');
  chmodSync(root, 0o755);
  quail(['init', ...R(), '--me', 'mail.example.com']);
  quail(['domain', 'add', 'example.com', ...R()]);
  for (const u of ['ann', 'bob', 'carol', 'dave', 'owner'])
    quail(['user', 'add', `${u}@example.com`, '--password', 'pw', ...R()]);
  quail(['list', 'create', 'team@example.com', '--owner', 'owner@example.com', '--prefix', '[team]', ...R()]);
  writeFileSync(join(root, 'control', 'listurl'), 'https://mail.example.com\n');
  writeFileSync(join(root, 'control', 'listbouncedays'), '0\n');
  webPort = await freePort();
  writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${webPort} admin\n`);
  q = await startProcess(root);
  port = listenerPort(root, 'smtp');
});

after(async () => {
  if (!isRoot) return;
  q?.child.kill('SIGTERM');
  if (q) await q.exited;
  rmSync(root, { recursive: true, force: true });
});

/** The messages in a mailbox's Maildir/new, as text. */
function inbox(user: string): string[] {
  const dir = join(root, 'domains', 'example.com', user, 'Maildir', 'new');
  return readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1'));
}

/** Waits for a message in `user`'s Maildir matching `re`, and returns it. */
async function arrives(user: string, re: RegExp): Promise<string> {
  let found: string | undefined;
  await waitFor(
    () => (found = inbox(user).find((m) => re.test(m))) !== undefined,
    60_000,
    () =>
      `a message ${re} for ${user}; has ${inbox(user).length}:\n${inbox(user).join('\n----\n').slice(-3000)}\n${q?.log().slice(-3000) ?? ''}`,
  );
  return found as string;
}

const header = (msg: string, name: string): string | undefined =>
  new RegExp(`^${name}: (.*(?:\\n[ \\t].*)*)`, 'im').exec(msg.split('\n\n')[0] ?? '')?.[1]?.replace(/\n[ \t]+/g, ' ');

function send(from: string, to: string, subject: string, body = 'hello\n', more: string[] = []): string {
  const r = swaks(port, ['--to', to, '--header', `Subject: ${subject}`, '--body', body, ...more], from);
  assert.equal(r.status, 0, r.out);
  return r.out;
}

const members = (role = 'subscriber'): string[] =>
  quail(['list', 'members', 'team@example.com', '--role', role, ...R()])
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' ')[0] as string);

void test(
  'quail explain shows the path of a list address: .qmail-team-default runs quail list-manage',
  { skip },
  () => {
    const out = quail(['explain', 'team-subscribe@example.com', ...R()]);
    assert.match(out, /\.qmail-team-default/);
    assert.match(out, /quail list-manage 'example\.com' 'team'/);
    assert.match(out, /mailing list team@example\.com: a request to subscribe the sender: a confirmation request goes/);
    assert.match(
      quail(['explain', 'team-return-7-joe=example.org@example.com', ...R()]),
      /mailing list team@example\.com: a bounce of post 7 to joe@example\.org: counted/,
    );
    assert.match(quail(['explain', 'team@example.com', ...R()]), /uses \S*\.qmail-team\n[\s\S]*quail list-post/);
  },
);

void test('subscribe by mail and confirm by reply to the cookie address', { skip }, async () => {
  send('ann@example.com', 'team-subscribe@example.com', 'sub');
  const ask = await arrives('ann', /Subject: confirm subscribe to team@example\.com/);
  const confirm = header(ask, 'Reply-To')?.replace(/[<>]/g, '') ?? '';
  assert.match(confirm, /^team-sc\.\d+\.[0-9a-f]{20}-ann=example\.com@example\.com$/);
  assert.deepEqual(members(), [], 'nobody is subscribed before the confirmation');
  send('ann@example.com', confirm, 'Re: confirm');
  await arrives('ann', /Subject: WELCOME to team@example\.com/);
  assert.deepEqual(members(), ['ann@example.com']);
  await waitFor(() => /lists\.change.*subscribed/.test(q?.log() ?? ''), 30_000, 'the lists.change event');
});

void test(
  'a post reaches every subscriber with VERP and the list headers; a dead subscriber is removed',
  { skip },
  async () => {
    quail([
      'list',
      'subscribe',
      'team@example.com',
      'bob@example.com',
      'carol@example.com',
      'dead@example.com',
      ...R(),
    ]);
    send('bob@example.com', 'team@example.com', 'hello list', 'first post\n');
    const got: Record<string, string> = {};
    for (const u of ['ann', 'bob', 'carol']) got[u] = await arrives(u, /Subject: \[team\] hello list/);
    for (const u of ['ann', 'bob', 'carol']) {
      const m = got[u] as string;
      assert.equal(header(m, 'Return-Path'), `<team-return-1-${u}=example.com@example.com>`, m);
      assert.equal(header(m, 'List-Id'), '<team.example.com>');
      assert.equal(header(m, 'List-Post'), '<mailto:team@example.com>');
      assert.equal(header(m, 'Precedence'), 'list');
      assert.equal(header(m, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
      assert.match(
        header(m, 'List-Unsubscribe') ?? '',
        new RegExp(
          `^<mailto:team-unsubscribe@example\\.com>, <https://mail\\.example\\.com/lists/unsubscribe/example\\.com/team/${u}%3Dexample\\.com/\\d+\\.[0-9a-f]{20}>$`,
        ),
      );
      assert.match(m, /\n\nfirst post\n/);
    }
    // dead@example.com has no mailbox: its copy bounces to team-return-1-dead=..., the probe bounces, it is removed.
    const told = await arrives('owner', /Subject: team@example\.com: dead@example\.com removed \(bouncing\)/);
    assert.match(told, /probe bounced too/);
    assert.deepEqual(members(), ['ann@example.com', 'bob@example.com', 'carol@example.com']);
    assert.ok(readdirSync(join(root, 'domains', 'example.com', '.lists', 'team', 'archive')).includes('1'));

    // RFC 8058 one-click, as a mail client does it: carol's own link POSTed to the web listener with the one-click
    // body; the web process (control/quailuser) asks root over run/lists.sock, which checks the cookie.
    const url = /<(https:[^>]+)>/.exec(header(got['carol'] as string, 'List-Unsubscribe') ?? '')?.[1] ?? '';
    const path = new URL(url).pathname;
    const click = async (p: string, body: string): Promise<{ status: number; text: string }> => {
      const r = await fetch(`http://127.0.0.1:${webPort}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      return { status: r.status, text: (await r.text()).trim() };
    };
    assert.equal((await click(path, 'nothing=here')).status, 400);
    assert.equal((await click(path.replace('carol', 'ann'), 'List-Unsubscribe=One-Click')).status, 403);
    assert.deepEqual(await click(path, 'List-Unsubscribe=One-Click'), {
      status: 200,
      text: 'carol@example.com is unsubscribed from team@example.com',
    });
    assert.deepEqual(members(), ['ann@example.com', 'bob@example.com']);
  },
);

void test('moderation: the post waits; a moderator accepts it by mail', { skip }, async () => {
  quail(['list', 'set', 'team@example.com', '--moderated', 'on', ...R()]);
  quail(['list', 'subscribe', 'team@example.com', '--role', 'moderator', 'owner@example.com', ...R()]);
  send('bob@example.com', 'team@example.com', 'needs approval', 'moderated post\n');
  const req = await arrives('owner', /Subject: MODERATE for team@example\.com: needs approval/);
  const accept = header(req, 'Reply-To')?.replace(/[<>]/g, '') ?? '';
  assert.match(accept, /^team-accept-[0-9a-f]{16}\.\d+\.[0-9a-f]{20}@example\.com$/);
  assert.equal(inbox('ann').filter((m) => /needs approval/.test(m)).length, 0, 'not sent before approval');
  send('owner@example.com', accept, 'Re: MODERATE');
  const m = await arrives('ann', /Subject: \[team\] needs approval/);
  assert.equal(header(m, 'Return-Path'), '<team-return-2-ann=example.com@example.com>');
  // A post rejected by the moderator: its poster is told, nobody else gets it.
  send('carol@example.com', 'team@example.com', 'please reject', 'spam\n');
  const req2 = await arrives('owner', /Subject: MODERATE for team@example\.com: please reject/);
  const reject = /team-reject-[0-9a-f]{16}\.\d+\.[0-9a-f]{20}@example\.com/.exec(req2)?.[0] ?? '';
  assert.notEqual(reject, '', req2);
  send('owner@example.com', reject, 'no');
  await arrives('carol', /did not accept your post/);
  // A second accept of the same post: it is no longer waiting.
  send('dave@example.com', accept, 'again');
  await arrives('dave', /no longer waiting/);
  quail(['list', 'set', 'team@example.com', '--moderated', 'off', ...R()]);
});

void test('unsubscribe by mail with confirmation; help', { skip }, async () => {
  send('bob@example.com', 'team-help@example.com', 'help');
  const help = await arrives('bob', /Subject: team@example\.com: help/);
  assert.match(help, /team-subscribe@example\.com[\s\S]*team-unsubscribe@example\.com/);
  send('bob@example.com', 'team-unsubscribe@example.com', 'leave');
  const ask = await arrives('bob', /Subject: confirm unsubscribe to team@example\.com/);
  const confirm = header(ask, 'Reply-To')?.replace(/[<>]/g, '') ?? '';
  assert.match(confirm, /^team-uc\.\d+\.[0-9a-f]{20}-bob=example\.com@example\.com$/);
  assert.ok(members().includes('bob@example.com'), 'still subscribed until confirmed');
  send('bob@example.com', confirm, 'Re: confirm');
  await arrives('bob', /Subject: GOODBYE from team@example\.com/);
  assert.ok(!members().includes('bob@example.com'));
  quail(['list', 'subscribe', 'team@example.com', 'bob@example.com', ...R()]);
});

void test(
  'hostile input: forged cookies, odd addresses, loops get clear replies; delivery goes on',
  { skip },
  async () => {
    // A cookie for ann, used for dave: refused with a bounce that says why.
    send('dave@example.com', 'team-sc.1700000000.0123456789abcdef0123-dave=example.com@example.com', 'forged');
    await arrives('dave', /confirmation code does not match/);
    // Not a command of the list.
    send('dave@example.com', 'team-frobnicate@example.com', 'odd');
    await arrives('dave', /team-frobnicate@example\.com is not a command of this list/);
    // A subscribe request for an address that cannot be one.
    send('dave@example.com', `team-subscribe-${'x'.repeat(40)}=bad!host@example.com`, 'bad');
    await arrives('dave', /is not a usable address|is not a domain name/);
    // A message that already went through the list.
    send('dave@example.com', 'team@example.com', 'looping', 'x\n', [
      '--add-header',
      'Delivered-To: mailing list team@example.com',
    ]);
    await arrives('dave', /This message is looping/);
    // Members only: dave is not subscribed.
    quail(['list', 'set', 'team@example.com', '--members-only', 'on', '--max-size', '2000', ...R()]);
    send('dave@example.com', 'team@example.com', 'not a member');
    await arrives('dave', /Only subscribers may post to team@example\.com/);
    send('ann@example.com', 'team@example.com', 'too big', `${'y'.repeat(3000)}\n`);
    await arrives('ann', /larger than the limit of team@example\.com \(2000 bytes\)/);
    // Through all of it nothing crashed, and a normal post still goes out.
    send('ann@example.com', 'team@example.com', 'still working');
    await arrives('bob', /Subject: \[team\] still working/);
    assert.doesNotMatch(q?.log() ?? '', /crashed|Trouble in/);
  },
);

void test(
  'a held post and the subscribers survive kill -9 of the whole server; accepted after the restart',
  { skip },
  async () => {
    quail(['list', 'set', 'team@example.com', '--moderated', 'on', '--members-only', 'off', ...R()]);
    send('dave@example.com', 'team@example.com', 'held across a crash', 'durable\n');
    const req = await arrives('owner', /Subject: MODERATE for team@example\.com: held across a crash/);
    const accept = header(req, 'Reply-To')?.replace(/[<>]/g, '') ?? '';
    q?.killGroup();
    await q?.exited;
    q = await startProcess(root);
    port = listenerPort(root, 'smtp');
    send('owner@example.com', accept, 'ok');
    const m = await arrives('ann', /Subject: \[team\] held across a crash/);
    assert.match(m, /\n\ndurable\n/);
    assert.ok(members().includes('ann@example.com'));
  },
);
