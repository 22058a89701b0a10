// Prometheus metrics of a real `quail start`, scraped over HTTP after real mail (swaks); quail status --json.
// tier: system (needs quail start, swaks)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  freePort,
  listenerPort,
  MAIN,
  setupRoot,
  startProcess,
  swaks,
  sleep,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

/** Writes `bytes` on a raw connection and resolves with everything the server said before it closed (10 s at most). */
function raw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => c.write(bytes));
    let said = '';
    const timer = setTimeout(() => c.destroy(), 10_000);
    c.on('data', (d: Buffer) => (said += d.toString('latin1')));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(said);
    });
  });
}

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

void test('metrics listener: counts of real sessions and deliveries, served by its own process; status --json', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-metrics-'));
  const owner = setupRoot(root, 'mx.metrics.test', [{ domain: 'metrics.test', boxes: ['joe'] }]);
  const [metricsPort, pop3Port] = [await freePort(), await freePort()];
  writeFileSync(
    join(root, 'control', 'listeners'),
    `127.0.0.1:0 smtp\n127.0.0.1:${metricsPort} metrics\n127.0.0.1:${pop3Port} pop3\n`,
  );
  let q: QuailProcess | undefined;
  try {
    q = await startProcess(root);
    const smtp = listenerPort(root, 'smtp');
    const ok = swaks(smtp, ['--to', 'joe@metrics.test']);
    assert.equal(ok.status, 0, ok.out);
    const refused = swaks(smtp, ['--to', 'someone@elsewhere.example']);
    assert.match(refused.out, /553 /, refused.out);
    const maildir = join(root, 'domains', 'metrics.test', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(maildir).length === 1,
      20_000,
      () => q?.log() ?? '',
    );
    let text = '';
    // the directory lookup times come from the SMTP child in batches (every 5 s): wait for them too
    const deadline = Date.now() + 30_000;
    while (!(
      sample(text, 'quail_deliveries_total{channel="local",result="delivered"}') === 1 &&
      (sample(text, 'quail_directory_lookup_seconds_count{op="rcpt"}') ?? 0) >= 1
    )) {
      assert.ok(Date.now() < deadline, `gave up waiting for the counts:\n${text}\n${q.log()}`);
      await sleep(200);
      text = (await get(metricsPort, '/metrics')).body;
    }
    const r = await get(metricsPort, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    text = r.body;
    assert.equal(sample(text, 'quail_smtp_connections_total{kind="smtp"}'), 2, text);
    assert.equal(sample(text, 'quail_messages_received_total{protocol="esmtp"}'), 1, text);
    assert.equal(sample(text, 'quail_messages_refused_total{stage="rcpt",reason="rcpthosts"}'), 1, text);
    assert.equal(sample(text, 'quail_messages_queued_total'), 1, text);
    assert.equal(sample(text, 'quail_delivery_duration_seconds_count{channel="local",result="delivered"}'), 1);
    assert.equal(sample(text, 'quail_delivery_latency_seconds_count{channel="local"}'), 1);
    assert.equal(sample(text, 'quail_queue_messages'), 0, text);
    assert.equal(sample(text, 'quail_child_restarts_total{process="smtpd"}'), undefined, 'no crash, no series');
    assert.equal((await get(metricsPort, '/nothing')).status, 404);
    assert.equal((await get(metricsPort, '/metrics', 'POST')).status, 405);
    // hostile input on the metrics port: not HTTP, a header past the limit, a request cut in the middle; each is
    // answered or dropped, and the metrics process goes on serving (no restart)
    assert.match(await raw(metricsPort, 'EHLO evil\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(
      await raw(metricsPort, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431 |^$/,
    );
    const cut = connect(metricsPort, '127.0.0.1', () => cut.end('GET /metr'));
    cut.on('error', () => undefined);
    assert.equal((await get(metricsPort, '/metrics')).status, 200);
    assert.equal(
      sample((await get(metricsPort, '/metrics')).body, 'quail_child_restarts_total{process="metricsd"}'),
      undefined,
      'the metrics process was not restarted',
    );

    // quail status --json: every listener (POP3 and metrics too) and the process serving the metrics
    const st = spawnSync(process.execPath, [MAIN, 'status', '--root', root, '--json'], { encoding: 'utf8' });
    assert.equal(st.status, 0, st.stderr);
    const status = JSON.parse(st.stdout) as {
      running: boolean;
      state: {
        listeners: Array<{ host: string; port: number; kind: string }>;
        metricsd?: { pid: number; uid: number };
      };
      queue: { messages: number };
    };
    assert.equal(status.running, true);
    assert.deepEqual(
      status.state.listeners.map((l) => `${l.kind} ${l.port}`).sort(),
      [
        `metrics ${metricsPort}`,
        `pop3 ${pop3Port}`,
        `smtp ${smtp}`,
        `submission ${listenerPort(root, 'submission')}`,
      ].sort(),
    );
    assert.equal(status.queue.messages, 0);
    if (process.getuid?.() === 0) {
      // root parses no HTTP: the metrics process runs as control/quailuser
      assert.equal(status.state.metricsd?.uid, owner.uid);
      const uid = readFileSync(`/proc/${status.state.metricsd?.pid ?? 0}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
      assert.equal(Number(uid), owner.uid);
    }
    const human = spawnSync(process.execPath, [MAIN, 'status', '--root', root], { encoding: 'utf8' });
    assert.match(human.stdout, new RegExp(`listener: 127\\.0\\.0\\.1:${pop3Port} pop3`));
    assert.match(human.stdout, new RegExp(`listener: 127\\.0\\.0\\.1:${metricsPort} metrics`));
  } finally {
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  }
});

void test(
  'metrics and web processes killed while they hold a request not yet answered: root says 503 try again, never a bare close',
  { skip: process.getuid?.() !== 0 && 'the metrics and web processes of their own run only as root' },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-http-lost-'));
    setupRoot(root, 'mx.lost.test', [{ domain: 'lost.test', boxes: ['joe'] }]);
    const ports = { metrics: await freePort(), admin: await freePort() };
    writeFileSync(
      join(root, 'control', 'listeners'),
      `127.0.0.1:0 smtp\n127.0.0.1:${ports.metrics} metrics\n127.0.0.1:${ports.admin} admin\n`,
    );
    let q: QuailProcess | undefined;
    try {
      q = await startProcess(root);
      for (const [kind, proc, path, good] of [
        ['metrics', 'metricsd', '/metrics', 200],
        ['admin', 'webd', '/login', 200],
      ] as const) {
        const port = ports[kind];
        assert.equal((await get(port, path)).status, good, `${kind} answers before`);
        const pidOf = (): number =>
          (JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as Record<string, { pid?: number }>)[proc]
            ?.pid ?? 0;
        const pid = pidOf();
        assert.ok(pid > 0, `quail.json names the ${proc} process`);
        // half a request: the process has read it and waits for the rest when it is killed
        let said = '';
        const c = connect(port, '127.0.0.1', () => c.write(`GET ${path} HTTP/1.1\r\nHost: lost.test\r\n`));
        c.on('data', (d: Buffer) => (said += d.toString('latin1')));
        c.on('error', () => undefined);
        const closed = new Promise<void>((r) => c.on('close', () => r()));
        await sleep(500);
        process.kill(pid, 'SIGKILL');
        await Promise.race([closed, sleep(10_000)]);
        assert.match(
          said,
          /^HTTP\/1\.1 503 Service Unavailable\r\nretry-after: 1\r\n/,
          `${kind}: the client got ${said}`,
        );
        await waitFor(
          () => q?.log().includes(`${proc}.lost`) === true,
          10_000,
          () => q?.log() ?? '',
        );
        // the replacement serves; a whole request sent to it is answered as before
        await waitFor(
          () => pidOf() !== pid && pidOf() > 0,
          30_000,
          () => q?.log() ?? '',
        );
        assert.equal((await get(port, path)).status, good, `${kind} answers after`);
      }
    } finally {
      q?.child.kill('SIGTERM');
      await q?.exited;
      q?.killGroup();
      if (existsSync(root)) rmSync(root, { recursive: true, force: true });
    }
  },
);
