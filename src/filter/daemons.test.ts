// Golden tables: clamd/spamd addresses and `quail filter`'s settings from the environment tcp.smtp gives it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterSettings } from './builtin.js';
import { parseDaemonAddress } from './daemons.js';

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
  });
  assert.deepEqual(filterSettings({ QUAIL_SPAMD: '127.0.0.1:783', QUAIL_SPAMACTION: 'quarantine' }), {
    spamd: { host: '127.0.0.1', port: 783 },
    virusAction: 'reject',
    spamAction: 'quarantine',
    timeoutMs: 60_000,
  });
  assert.equal(filterSettings({}), 'neither QUAIL_CLAMD nor QUAIL_SPAMD is set (tcp.smtp): nothing to ask');
  assert.equal(
    filterSettings({ QUAIL_CLAMD: '/s', QUAIL_VIRUSACTION: 'tag' }),
    'QUAIL_VIRUSACTION="tag": use reject or quarantine',
  );
  assert.equal(filterSettings({ QUAIL_SPAMD: 'x:y' }), 'QUAIL_SPAMD="x:y" is neither /path/to/socket nor host:port');
});
