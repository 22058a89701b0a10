// quail systemd-unit: the unit's settings, and ExecStart quoting of paths that systemd would otherwise split or expand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execWord, systemdUnit } from './systemd.js';

const unit = systemdUnit({
  root: '/var/quail',
  node: '/usr/bin/node',
  main: '/opt/quail/dist/cli/main.js',
  logJson: false,
});
const setting = (u: string, key: string): string[] =>
  u
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

void test('the unit runs quail start in the foreground, reloads with SIGHUP, restarts on failure', () => {
  assert.deepEqual(setting(unit, 'ExecStart'), ['/usr/bin/node /opt/quail/dist/cli/main.js start --root /var/quail']);
  assert.deepEqual(setting(unit, 'Type'), ['simple'], 'no sd_notify: not Type=notify');
  assert.deepEqual(setting(unit, 'ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.deepEqual(setting(unit, 'Restart'), ['on-failure']);
  assert.deepEqual(setting(unit, 'KillMode'), ['mixed'], 'SIGTERM to the supervisor, which stops its children');
  assert.deepEqual(setting(unit, 'WantedBy'), ['multi-user.target']);
  // hardening that a root supervisor dropping privileges keeps working under
  assert.deepEqual(setting(unit, 'NoNewPrivileges'), ['yes']);
  assert.deepEqual(setting(unit, 'ProtectSystem'), ['full']);
  assert.deepEqual(setting(unit, 'ReadWritePaths'), ['-/var/quail']);
  assert.deepEqual(setting(unit, 'ProtectHome'), [], 'mailboxes of passwd users live in their homes');
  assert.deepEqual(setting(unit, 'MemoryDenyWriteExecute'), [], 'V8 compiles code at run time');
  const caps = setting(unit, 'CapabilityBoundingSet')[0]?.split(' ') ?? [];
  for (const c of ['CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_DAC_OVERRIDE', 'CAP_KILL'])
    assert.ok(caps.includes(c), c);
  assert.ok(!caps.includes('CAP_SYS_ADMIN'));
  const json = systemdUnit({ root: '/var/quail', node: '/usr/bin/node', main: '/m.js', logJson: true });
  assert.deepEqual(setting(json, 'ExecStart'), ['/usr/bin/node /m.js start --root /var/quail --log-json']);
});

void test('ExecStart words: blanks quoted, % and $ doubled (systemd would expand them)', () => {
  const table: Array<[string, string]> = [
    ['/var/quail', '/var/quail'],
    ['/srv/mail root', '"/srv/mail root"'],
    ['/srv/100%', '/srv/100%%'],
    ['/srv/$HOME', '/srv/$$HOME'],
    ['/srv/a"b', '"/srv/a\\"b"'],
  ];
  for (const [word, want] of table) assert.equal(execWord(word), want, word);
  const odd = systemdUnit({ root: '/srv/mail 50%', node: '/usr/bin/node', main: '/m.js', logJson: false });
  assert.deepEqual(setting(odd, 'ExecStart'), ['/usr/bin/node /m.js start --root "/srv/mail 50%%"']);
  assert.deepEqual(setting(odd, 'WorkingDirectory'), ['/srv/mail 50%%']);
  assert.deepEqual(setting(odd, 'ReadWritePaths'), ['"-/srv/mail 50%%"']);
});
