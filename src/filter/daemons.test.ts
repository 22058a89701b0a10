// Golden tables: clamd/spamd addresses and `quail filter`'s settings from the environment tcp.smtp gives it; a
// daemon on 127.0.0.1 that floods its answer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QuailError } from '../core/index.js';
import { filterSettings } from './builtin.js';
import { clamdScan, MAX_ANSWER, parseDaemonAddress, spamdCheck } from './daemons.js';

void test('daemon addresses: a socket path, host:port, :port, a bare host or port; anything else refused', () => {
  const table: Array<[string, ReturnType<typeof parseDaemonAddress>]> = [
    ['/run/clamav/clamd.ctl', { path: '/run/clamav/clamd.ctl' }],
    ['127.0.0.1:783', { host: '127.0.0.1', port: 783 }],
    [':7830', { host: '127.0.0.1', port: 7830 }],
    ['7830', { host: '127.0.0.1', port: 7830 }],
    ['scanner.example', { host: 'scanner.example', port: 3310 }],
    ['relative/sock', undefined],
    ['host:port', undefined],
    ['', undefined],
  ];
  for (const [input, want] of table) assert.deepEqual(parseDaemonAddress(input, 3310), want, input);
});

void test('filter settings: defaults, actions, and what is wrong said in words', () => {
  assert.deepEqual(filterSettings({ QUAIL_CLAMD: '/s' }), {
    clamd: { path: '/s' },
    virusAction: 'reject',
    spamAction: 'tag',
    timeoutMs: 60_000,
    filterMs: 295_000,
  });
  assert.deepEqual(filterSettings({ QUAIL_SPAMD: '127.0.0.1:783', QUAIL_SPAMACTION: 'quarantine' }), {
    spamd: { host: '127.0.0.1', port: 783 },
    virusAction: 'reject',
    spamAction: 'quarantine',
    timeoutMs: 60_000,
    filterMs: 295_000,
  });
  assert.equal(filterSettings({}), 'neither QUAIL_CLAMD nor QUAIL_SPAMD is set (tcp.smtp): nothing to ask');
  assert.equal(
    filterSettings({ QUAIL_CLAMD: '/s', QUAIL_VIRUSACTION: 'tag' }),
    'QUAIL_VIRUSACTION="tag": use reject or quarantine',
  );
  assert.equal(filterSettings({ QUAIL_SPAMD: 'x:y' }), 'QUAIL_SPAMD="x:y" is neither /path/to/socket nor host:port');
  assert.deepEqual(filterSettings({ QUAIL_CLAMD: '/s', QUAIL_SCANTIMEOUT: '5' }), {
    clamd: { path: '/s' },
    virusAction: 'reject',
    spamAction: 'tag',
    timeoutMs: 5000,
    filterMs: 295_000,
  });
  // a scan timeout past the filter's: the scans end within the filter's time, and the filter says so at its start
  assert.deepEqual(filterSettings({ QUAIL_CLAMD: '/s', QUAIL_SCANTIMEOUT: '30', QUAIL_FILTERTIMEOUT: '10' }), {
    clamd: { path: '/s' },
    virusAction: 'reject',
    spamAction: 'tag',
    timeoutMs: 30_000,
    filterMs: 9000,
    warning:
      "QUAIL_SCANTIMEOUT=30 s does not fit in QUAIL_FILTERTIMEOUT=10 s: the scans end 9 s after the filter's start " +
      '(set QUAIL_SCANTIMEOUT lower or QUAIL_FILTERTIMEOUT higher)',
  });
  for (const bad of ['0', '-1', '2.5', '1e3', 'soon'])
    assert.equal(
      filterSettings({ QUAIL_CLAMD: '/s', QUAIL_SCANTIMEOUT: bad }),
      `QUAIL_SCANTIMEOUT="${bad}": use a number of seconds from 1 to 99999 (default 60)`,
      bad,
    );
});

void test('a spamd or clamd that floods its answer: refused (temporary) past MAX_ANSWER, not collected whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-flood-'));
  const junk = Buffer.alloc(4 * 1024 * 1024, 'X');
  // Each answers at once, a well-formed start and then megabytes, and closes after reading the whole request.
  const flood = async (start: string): Promise<Server> => {
    const srv = createServer((c) => {
      c.on('error', () => undefined);
      c.write(start);
      c.write(junk);
      c.on('end', () => c.end());
      c.resume();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return srv;
  };
  const spamd = await flood('SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\n');
  const clamd = await flood('stream: OK');
  try {
    const msg = join(dir, 'msg');
    writeFileSync(msg, 'Subject: x\n\nhello\n');
    const at = (srv: Server): { host: string; port: number } => ({
      host: '127.0.0.1',
      port: (srv.address() as AddressInfo).port,
    });
    const tooMuch = (e: unknown): boolean =>
      e instanceof QuailError && e.temporary && e.message.includes(`answered more than ${MAX_ANSWER} bytes`);
    await assert.rejects(spamdCheck(at(spamd), msg, 18, 30_000), tooMuch);
    await assert.rejects(clamdScan(at(clamd), msg, 30_000), tooMuch);
  } finally {
    spamd.close();
    clamd.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('a clamd that dribbles its verdict a byte at a time: cut at the scan deadline, not believed when it ends', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-dribble-'));
  // Reads the request, then sends a clean verdict one byte every 400 ms: each gap is shorter than the deadline
  // below, the whole answer longer, so only a deadline over the whole exchange (not an idle timeout) stops it.
  const timers = new Set<NodeJS.Timeout>();
  const srv = createServer((c) => {
    c.on('error', () => undefined);
    const answer = Buffer.from('stream: OK\0', 'latin1');
    let i = 0;
    const t = setInterval(() => {
      if (i < answer.length && !c.destroyed) c.write(answer.subarray(i, ++i));
      else clearInterval(t);
    }, 400);
    timers.add(t);
    c.resume();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const msg = join(dir, 'msg');
    writeFileSync(msg, 'Subject: x\n\nhello\n');
    const port = (srv.address() as AddressInfo).port;
    await assert.rejects(
      clamdScan({ host: '127.0.0.1', port }, msg, 1000),
      (e: unknown) =>
        e instanceof QuailError &&
        e.temporary &&
        e.message === `clamd at 127.0.0.1:${port}: no complete answer within 1 s`,
    );
  } finally {
    for (const t of timers) clearInterval(t);
    srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
