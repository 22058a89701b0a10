// ODMR (RFC 2645) end to end: quail start with an odmr listener, fetchmail --protocol ODMR as the customer relaying
// to its own SMTP server; replies of the protocol from python3's smtplib; 5xx bounced once, 4xx kept.
// tier: system (needs quail start, swaks, fetchmail, python3)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchmail as runFetchmail, runAsync } from '../../test/support/fetchmail.js';
import { testSmtp, type SmtpScript } from '../../test/support/testsmtp.js';
import { freePort, listenerPort, quail, setupRoot, startProcess, swaks, waitFor } from '../../test/support/start.js';

const SOME = 'some.example.com';
const OTHER = 'other.example.com';
const SECRET = 'odmr-cram-secret';

interface World {
  readonly root: string;
  readonly odmr: number;
  readonly box: (domain: string) => string[];
}

/** A root holding two domains for cust@isp.test (CRAM-MD5 secret, and a mailbox password for PLAIN). */
async function world(): Promise<World> {
  const root = mkdtempSync(join(tmpdir(), 'quail-odmr-'));
  setupRoot(root, 'isp.test', []);
  quail(['domain', 'add', 'isp.test', '--root', root]);
  quail(['user', 'add', 'cust@isp.test', '--password', 'cust-password', '--root', root]);
  const secret = join(root, 'atrn.secret');
  writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
  for (const d of [SOME, OTHER]) {
    const a = ['--root', root, '--host', '127.0.0.1:9', '--every', '1h', '--atrn', 'cust@isp.test'];
    quail(['held', 'add', d, ...a, '--atrn-secret-file', secret]);
  }
  quail(['held', 'add', 'stranger.example.com', '--root', root, '--host', '127.0.0.1:9', '--every', '1h']);
  const odmr = await freePort();
  writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${odmr} odmr\n`);
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n');
  return { root, odmr, box: (d) => readdirSync(join(root, 'held', d, 'Maildir', 'new')) };
}

/** fetchmail as the customer: ODMR with CRAM-MD5, the turned-around session relayed to `smtpPort`. */
function fetchmail(odmr: number, smtpPort: number, domains: string): Promise<{ code: number | null; out: string }> {
  const rc = join(mkdtempSync(join(tmpdir(), 'quail-fetchmailrc-')), 'rc');
  writeFileSync(
    rc,
    `poll 127.0.0.1 protocol ODMR port ${odmr} user "cust@isp.test" password "${SECRET}" fetchdomains ${domains} smtphost "127.0.0.1/${smtpPort}"\n`,
    { mode: 0o600 },
  );
  return runFetchmail(['-v', '--nosyslog', '--nodetach', '-f', rc]);
}

/** An ODMR dialogue with python3's smtplib: EHLO, then each [verb, arg]; prints each reply's code and text. */
function smtplib(port: number, steps: readonly (readonly [string, string])[]): Promise<string> {
  const py = `import smtplib,base64,sys
s=smtplib.SMTP('127.0.0.1',${port})
s.ehlo('customer.test')
print(s.ehlo_resp.decode().replace('\\n','|'))
for v,a in ${JSON.stringify(steps)}:
    c,m=s.docmd(v,a)
    print(c,m.decode())
s.close()`;
  return runAsync('python3', ['-c', py]).then((r) => r.out);
}

function fill(smtp: number, who: readonly string[]): void {
  for (const to of who) assert.equal(swaks(smtp, ['--to', to]).status, 0);
}

void test('fetchmail --protocol ODMR: ATRN for two domains, the roles reverse, each message arrives once', async () => {
  const w = await world();
  const customer = await testSmtp('127.0.0.1', { ehlo: ['PIPELINING'] });
  const q = await startProcess(w.root);
  try {
    const smtp = listenerPort(w.root, 'smtp');
    fill(smtp, [`joe@${SOME}`, `ann@${SOME}`, `bob@${OTHER}`]);
    await waitFor(() => w.box(SOME).length === 2 && w.box(OTHER).length === 1, 20_000, q.log);
    const f = await fetchmail(w.odmr, customer.port, `${SOME},${OTHER}`);
    assert.match(f.out, /Turnaround now/, f.out);
    await waitFor(() => w.box(SOME).length === 0 && w.box(OTHER).length === 0, 20_000, q.log);
    assert.deepEqual(customer.messages.flatMap((m) => m.recipients).sort(), [
      `ann@${SOME}`,
      `bob@${OTHER}`,
      `joe@${SOME}`,
    ]);
    await waitFor(() => /odmr\.atrn .*domain=other\.example\.com result=done sent=3/.test(q.log()), 20_000, q.log);
    assert.match(quail(['held', 'show', SOME, '--root', w.root]), /last push: \S+: 3 sent, 0 bounced, 0 kept/);
    // Nothing left: 453, and nothing is sent twice.
    const again = await fetchmail(w.odmr, customer.port, SOME);
    assert.match(again.out, /You have no mail/, again.out);
    assert.equal(customer.messages.length, 3);
  } finally {
    q.killGroup();
    await q.exited;
    await customer.close();
  }
});

void test('ODMR replies (RFC 2645): 530 before AUTH, 535, 450 for a domain not the login’s, 501, 502; PLAIN on loopback', async () => {
  const w = await world();
  const q = await startProcess(w.root);
  try {
    const plain = (u: string, p: string): string => Buffer.from(`\0${u}\0${p}`).toString('base64');
    const out = await smtplib(w.odmr, [
      ['ATRN', SOME],
      ['AUTH', `PLAIN ${plain('cust@isp.test', 'wrong')}`],
      ['AUTH', 'NOSUCH'],
      ['AUTH', `PLAIN ${plain('cust@isp.test', 'cust-password')}`],
      ['ATRN', 'stranger.example.com'],
      ['ATRN', 'bad domain!'],
      ['ATRN', SOME],
      ['MAIL', 'FROM:<x@y.test>'],
      ['ETRN', SOME],
      ['QUIT', ''],
    ]);
    assert.match(out, /^isp\.test\|(STARTTLS\|)?AUTH CRAM-MD5 PLAIN LOGIN\|ATRN$/m);
    const codes = out
      .split('\n')
      .slice(1, -1)
      .map((l) => l.slice(0, 3));
    assert.deepEqual(codes, ['530', '535', '504', '235', '450', '501', '453', '502', '502', '221'], out);
  } finally {
    q.killGroup();
    await q.exited;
  }
});

void test('ODMR: a 5xx from the customer bounces that message once, a 4xx keeps it; nothing else is touched', async () => {
  const w = await world();
  const script: SmtpScript = {
    rcpt: (a) =>
      a.startsWith('refused@') ? '550 5.1.1 no such user' : a.startsWith('later@') ? '451 4.3.0 try later' : undefined,
  };
  const customer = await testSmtp('127.0.0.1', script);
  const q = await startProcess(w.root);
  try {
    const smtp = listenerPort(w.root, 'smtp');
    fill(smtp, [`ok@${SOME}`, `refused@${SOME}`, `later@${SOME}`]);
    await waitFor(() => w.box(SOME).length === 3, 20_000, q.log);
    const f = await fetchmail(w.odmr, customer.port, SOME);
    assert.match(f.out, /Turnaround now/, f.out);
    await waitFor(
      () => /odmr\.atrn .*domain=some\.example\.com result=done sent=1 bounced=1 kept=1/.test(q.log()),
      20_000,
      q.log,
    );
    assert.deepEqual(
      customer.messages.flatMap((m) => m.recipients),
      [`ok@${SOME}`],
    );
    const left = [...w.box(SOME), ...readdirSync(join(w.root, 'held', SOME, 'Maildir', 'cur'))];
    assert.equal(left.length, 1, 'the 4xx message stays');
  } finally {
    q.killGroup();
    await q.exited;
    await customer.close();
  }
});

/** The customer's side of ODMR over TLS with python3's smtplib and ssl: STARTTLS, AUTH PLAIN, ATRN, then it serves SMTP on the same TLS connection. */
const TLS_CUSTOMER = `import smtplib,ssl,base64,sys
s=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))
s.ehlo('customer.test')
assert s.has_extn('starttls'), s.ehlo_resp
ctx=ssl.create_default_context(); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE
s.starttls(context=ctx)
s.ehlo('customer.test')
print('TLS', s.sock.version())
print(*s.docmd('AUTH','PLAIN '+base64.b64encode(b'\\0cust@isp.test\\0cust-password').decode()))
print(*s.docmd('ATRN',sys.argv[2]))
w=lambda x: s.sock.sendall(x.encode()+b'\\r\\n')
w('220 customer.test ESMTP')
while True:
    l=s.file.readline().decode('latin1').rstrip('\\r\\n')
    v=l[:4].upper()
    if v in ('EHLO','HELO'): w('250 customer.test')
    elif v=='MAIL': w('250 ok')
    elif v=='RCPT':
        print('RCPT', l[8:])
        w('250 ok')
    elif v=='DATA':
        w('354 go')
        while s.file.readline() not in (b'.\\r\\n', b''): pass
        w('250 ok stored')
    elif v=='QUIT':
        w('221 bye')
        break
    elif l=='': break
    else: w('502 no')
print('END')
`;

void test('ODMR over STARTTLS (python3 smtplib and ssl): AUTH PLAIN, ATRN, the held mail delivered over the TLS connection', async () => {
  const w = await world();
  const q = await startProcess(w.root);
  try {
    const smtp = listenerPort(w.root, 'smtp');
    fill(smtp, [`joe@${SOME}`, `ann@${SOME}`]);
    await waitFor(() => w.box(SOME).length === 2, 20_000, q.log);
    const r = await runAsync('python3', ['-c', TLS_CUSTOMER, String(w.odmr), SOME]);
    assert.match(r.out, /^TLS TLSv1\.[23]$/m, r.out);
    assert.match(r.out, /^235 /m, r.out);
    assert.match(r.out, /^250 .*reversing/m, r.out);
    assert.deepEqual(
      [...r.out.matchAll(/^RCPT <([^>]*)>/gm)].map((m) => m[1]).sort(),
      [`ann@${SOME}`, `joe@${SOME}`],
      r.out,
    );
    assert.match(r.out, /^END$/m, r.out);
    await waitFor(() => w.box(SOME).length === 0, 20_000, q.log);
    await waitFor(() => /odmr\.atrn .*domain=some\.example\.com result=done sent=2/.test(q.log()), 20_000, q.log);
  } finally {
    q.killGroup();
    await q.exited;
  }
});
