// Real POP3 clients against the server: Python's poplib (plain, STLS, implicit TLS), fetchmail and mpop.
// tier: system (needs fetchmail, mpop, openssl, python3)
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deliverToMaildir, UniqueNamer } from '../maildir/index.js';
import { createPop3Server, type Pop3Server } from './index.js';
import { makeMaildir, TableAuthenticator } from '../../test/support/pop3d.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

interface Env {
  dir: string;
  maildir: string;
  plain: Pop3Server;
  implicit: Pop3Server;
  plainPort: number;
  tlsPort: number;
  events: string[];
  namer: UniqueNamer;
}

/** Delivers through quail's own Maildir writer (tmp → new), as local delivery does. */
async function deliver(env: Env, subject: string, body: string): Promise<number> {
  const file = join(env.dir, 'msg');
  const text = `From: a@example.net\nTo: joe@example.org\nSubject: ${subject}\n\n${body}`;
  writeFileSync(file, text);
  const r = await deliverToMaildir(env.maildir, Buffer.alloc(0), file, env.namer);
  assert.equal(r.kind, 'ok');
  return Buffer.byteLength(text) + text.split('\n').length - 1; // the size as sent: each LF becomes CRLF
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client without blocking the event loop (the server under test lives in this process). */
function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function python(script: string, ...args: string[]): Promise<unknown> {
  const r = await run('python3', ['-c', script, ...args]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown;
}

const POPLIB = `
import json, poplib, ssl, sys
mode, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {}
if mode == 'implicit':
    p = poplib.POP3_SSL('127.0.0.1', port, context=ctx)
else:
    p = poplib.POP3('127.0.0.1', port)
    out['capa'] = sorted(p.capa().keys())
    if mode == 'stls':
        try:
            p.user('joe@example.org'); out['before_tls'] = 'accepted'
        except poplib.error_proto as e:
            out['before_tls'] = e.args[0].decode()
        p.stls(context=ctx)
        out['capa_tls'] = sorted(p.capa().keys())
p.user('joe%example.org'); p.pass_('secret')
count, size = p.stat()
out['stat'] = [count, size]
out['uidl'] = [l.decode().split(' ')[1] for l in p.uidl()[1]]
out['messages'] = []
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    out['messages'].append({'lines': [l.decode() for l in lines], 'octets': octets})
    p.dele(i)
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;

void describe('pop3d with real clients', () => {
  let env: Env;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quail-pop3c-'));
    const gen = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=localhost',
        '-days',
        '2',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(gen.status, 0, gen.stderr);
    // control/servercert.pem keeps key and certificate in one file: pass the same PEM as both.
    const pem = readFileSync(join(dir, 'key.pem'), 'utf8') + readFileSync(join(dir, 'cert.pem'), 'utf8');
    const maildir = makeMaildir(join(dir, 'Maildir'));
    writeFileSync(join(dir, 'users'), `joe@example.org secret ${maildir}\n`);
    const events: string[] = [];
    const common = {
      authenticator: new TableAuthenticator(join(dir, 'users')),
      tls: { key: pem, cert: pem },
      log: (name: string, fields: Readonly<Record<string, unknown>>) =>
        events.push(`${name} ${JSON.stringify(fields)}`),
    };
    // No client rule allows clear text (the default, loopback included), so plaintext logins need TLS.
    const plain = createPop3Server({ ...common });
    const implicit = createPop3Server({ ...common, implicitTls: true });
    const plainPort = (await plain.listen(0, '127.0.0.1')).port;
    const tlsPort = (await implicit.listen(0, '127.0.0.1')).port;
    env = { dir, maildir, plain, implicit, plainPort, tlsPort, events, namer: new UniqueNamer('test.host') };
  });
  after(async () => {
    await env.plain.close();
    await env.implicit.close();
    rmSync(env.dir, { recursive: true, force: true });
  });

  void it('poplib over STLS: USER refused before TLS, CAPA changes, messages fetched and deleted', async () => {
    const size = (await deliver(env, 'one', 'first\n.leading dot\n')) + (await deliver(env, 'two', 'second\n'));
    const out = (await python(POPLIB, 'stls', String(env.plainPort))) as Record<string, unknown>;
    assert.equal(out.before_tls, '-ERR plaintext logins need an encrypted connection: use STLS first');
    assert.ok((out.capa as string[]).includes('STLS'));
    assert.ok(!(out.capa as string[]).includes('USER'));
    assert.ok((out.capa_tls as string[]).includes('USER') && !(out.capa_tls as string[]).includes('STLS'));
    assert.deepEqual(out.stat, [2, size]);
    const msgs = out.messages as { lines: string[]; octets: number }[];
    assert.deepEqual(msgs[0]?.lines.slice(-2), ['first', '.leading dot'], 'poplib undoes the dot-stuffing');
    assert.match(out.quit as string, /^\+OK .*2 messages deleted/);
    assert.deepEqual(readdirSync(join(env.maildir, 'cur')), []);
    assert.ok(env.events.some((e) => e.startsWith('pop3.login') && e.includes('"tls":true')));
  });

  void it('poplib over implicit TLS', async () => {
    const size = await deliver(env, 'three', 'third\n');
    const out = (await python(POPLIB, 'implicit', String(env.tlsPort))) as Record<string, unknown>;
    assert.deepEqual(out.stat, [1, size]);
    assert.match(out.quit as string, /^\+OK .*1 messages deleted/);
  });

  void it('poplib in plain text where a client rule allows it (QUAIL_CLEARAUTH="1" in tcp.pop3)', async () => {
    const local = createPop3Server({
      authenticator: new TableAuthenticator(join(env.dir, 'users')),
      clientRules: () => ({ clearAuth: true }),
    });
    try {
      const { port } = await local.listen(0, '127.0.0.1');
      const size = await deliver(env, 'four', 'fourth\n');
      const out = (await python(POPLIB, 'plain', String(port))) as Record<string, unknown>;
      assert.ok((out.capa as string[]).includes('USER'));
      assert.equal((out.uidl as string[]).length, 1);
      assert.deepEqual(out.stat, [1, size]);
    } finally {
      await local.close();
    }
  });

  void it(
    'fetchmail (STLS, USER/PASS) downloads and deletes',
    { skip: !has('fetchmail') && process.env['QUAIL_REQUIRE_TOOLS'] !== '1' && 'apt-get install fetchmail' },
    async () => {
      await deliver(env, 'fm1', 'by fetchmail\n');
      await deliver(env, 'fm2', 'again\n');
      const mbox = join(env.dir, 'fetchmail.mbox');
      const rc = join(env.dir, 'fetchmailrc');
      writeFileSync(
        rc,
        [
          'set no bouncemail',
          `poll 127.0.0.1 with proto POP3 port ${env.plainPort}`,
          `  user 'joe@example.org' there with password 'secret' is 'root' here`,
          `  options no keep fetchall sslproto 'tls1.2+' no sslcertck`,
          `  mda "/bin/sh -c 'cat >> ${mbox}'"`,
          '',
        ].join('\n'),
      );
      chmodSync(rc, 0o600);
      const r = await run(
        'fetchmail',
        ['--nosyslog', '-N', '-f', rc, '-i', join(env.dir, 'fmids'), '--pidfile', join(env.dir, 'fm.pid')],
        { ...process.env, HOME: env.dir },
      );
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const got = readFileSync(mbox, 'utf8');
      assert.match(got, /Subject: fm1\n\nby fetchmail\n/);
      assert.match(got, /Subject: fm2\n\nagain\n/);
      assert.deepEqual(readdirSync(join(env.maildir, 'cur')), []);
    },
  );

  void it(
    'mpop (implicit TLS and STLS with SASL PLAIN) downloads and deletes',
    { skip: !has('mpop') && process.env['QUAIL_REQUIRE_TOOLS'] !== '1' && 'apt-get install mpop' },
    async () => {
      const into = makeMaildir(join(env.dir, 'mpop-into'));
      const mpop = async (port: number, tlsArgs: string[], auth: string): Promise<void> => {
        const r = await run(
          'mpop',
          [
            '--host=127.0.0.1',
            `--port=${port}`,
            '--tls=on',
            '--tls-certcheck=off',
            ...tlsArgs,
            `--auth=${auth}`,
            '--user=joe@example.org',
            '--passwordeval=echo secret',
            `--delivery=maildir,${into}`,
            '--keep=off',
            `--uidls-file=${join(env.dir, 'uidls')}`,
          ],
          { ...process.env, HOME: env.dir },
        );
        assert.equal(r.status, 0, r.stderr + r.stdout);
      };
      await deliver(env, 'mp1', 'by mpop\n');
      await mpop(env.tlsPort, ['--tls-starttls=off'], 'user');
      await deliver(env, 'mp2', 'by mpop over stls\n');
      await mpop(env.plainPort, ['--tls-starttls=on'], 'plain');
      const got = readdirSync(join(into, 'new'))
        .map((n) => readFileSync(join(into, 'new', n), 'utf8'))
        .sort();
      assert.equal(got.length, 2);
      assert.match(got.join(''), /Subject: mp1/);
      assert.match(got.join(''), /Subject: mp2/);
      assert.deepEqual(readdirSync(join(env.maildir, 'cur')), []);
    },
  );
});
